//! Times one argon2id hash for the configured cost and a few neighbours, to tune
//! `auth.argon2_*` to 50–100 ms on the machine at hand (`make bench` runs it).
use std::time::Instant;
use vidsight_auth::password::PasswordHasher;

fn main() {
    let config =
        vidsight_config::Config::load(vidsight_config::ConfigSource::Default, &Default::default())
            .expect("configuration loads");
    let auth = &config.auth;
    let configured = (
        auth.argon2_memory_kib,
        auth.argon2_iterations,
        auth.argon2_parallelism,
    );
    println!("argon2id cost per hash (median of 7), this machine:");
    for (memory, iterations, lanes) in [
        (19_456, 2, 1),
        (32_768, 2, 1),
        configured,
        (65_536, 2, 1),
        (65_536, 3, 1),
    ] {
        let hasher = PasswordHasher::new(memory, iterations, lanes).unwrap();
        let mut times: Vec<f64> = (0..7)
            .map(|_| {
                let started = Instant::now();
                hasher
                    .hash_blocking("correct horse battery staple")
                    .unwrap();
                started.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        times.sort_by(f64::total_cmp);
        let marker = if (memory, iterations, lanes) == configured {
            "  <- configured default"
        } else {
            ""
        };
        println!(
            "  m={memory:>6} KiB t={iterations} p={lanes}: {:>6.1} ms{marker}",
            times[3]
        );
    }
}
