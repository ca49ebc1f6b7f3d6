//! Times Argon2id verifications the way a login does them (`Passwords::verify`,
//! off the executor) with the configured parameters: the floor `POST /login`
//! cannot go below. Usage: argon2-floor [ITERATIONS] (default 100).

use std::time::Instant;

use shared::config::Config;
use shared::password::Passwords;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args().nth(1).map_or(Ok(100), |a| a.parse())?;
    let config = Config::from_env()?;
    let passwords = Passwords::new(&config.argon2)?;
    let hash = passwords.hash("correct horse battery staple").await?;
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let start = Instant::now();
        assert!(
            passwords
                .verify("correct horse battery staple", Some(&hash))
                .await
        );
        times.push(start.elapsed().as_secs_f64() * 1000.0);
    }
    times.sort_by(f64::total_cmp);
    let p = |q: f64| times[((times.len() - 1) as f64 * q) as usize];
    println!(
        "argon2id m={} t={} p={}: {n} verifications, p50 {:.2} ms, p99 {:.2} ms, mean {:.2} ms",
        config.argon2.m_cost,
        config.argon2.t_cost,
        config.argon2.p_cost,
        p(0.5),
        p(0.99),
        times.iter().sum::<f64>() / n as f64
    );
    Ok(())
}
