//! The `options` Lambda function: state built once per cold start, then the runtime loop.

#[tokio::main]
async fn main() -> Result<(), lambda_http::Error> {
    shared::lambda::run_without_key(options::router()).await
}
