//! Log filtering shared by Lambda and `planx serve`: whatever level is asked
//! for, the crates that log request and response bodies at debug level (the
//! AWS SDK would print DynamoDB items with password hashes, SMS texts with
//! codes; the runtime, incoming events with passwords) stay at INFO at most.

use tracing_subscriber::filter::{LevelFilter, Targets};

const BODY_LOGGERS: [&str; 14] = [
    "aws_config",
    "aws_runtime",
    "aws_sdk_dynamodb",
    "aws_sdk_ses",
    "aws_sdk_sns",
    "aws_smithy_http_client",
    "aws_smithy_runtime",
    "aws_smithy_runtime_api",
    "h2",
    "hyper",
    "hyper_util",
    "lambda_http",
    "lambda_runtime",
    "rustls",
];

/// `level` for planx's own lines; never below INFO for the body loggers.
pub fn without_bodies(level: LevelFilter) -> Targets {
    BODY_LOGGERS
        .iter()
        .fold(Targets::new().with_default(level), |t, target| {
            t.with_target(*target, level.min(LevelFilter::INFO))
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use tracing::Level;

    #[test]
    fn sdk_stays_at_info_when_trace_is_asked() {
        let t = without_bodies(LevelFilter::TRACE);
        assert!(t.would_enable("shared::http", &Level::TRACE));
        assert!(!t.would_enable("aws_smithy_runtime::client::orchestrator", &Level::DEBUG));
        assert!(t.would_enable("aws_smithy_runtime::client::orchestrator", &Level::INFO));
        let quiet = without_bodies(LevelFilter::WARN);
        assert!(!quiet.would_enable("aws_sdk_dynamodb", &Level::INFO));
    }
}
