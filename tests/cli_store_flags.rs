//! The Milvus settings every index command takes, when they are wrong: each mistake is one
//! clear error naming the flag or file, found before any work, and a token never shows in
//! what is printed. None of these needs a server: a port nothing listens on stands for one
//! that is down.

mod common;

use common::{shared_fixture, Output, TempDir};

/// Loopback port 9 (discard): nothing listens there.
const DEAD: &str = "http://127.0.0.1:9";

/// The binary without the `TUNELENS_*` settings of the environment (CI exports the test
/// server's URI, which would win over a config file), plus `env`.
fn run_with(args: &[&str], env: &[(&str, &str)]) -> Output {
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_tunelens"));
    for (k, _) in std::env::vars() {
        if k.starts_with("TUNELENS_") {
            command.env_remove(k);
        }
    }
    common::output(command.args(args).envs(env.iter().copied()))
}

fn run(args: &[&str]) -> Output {
    run_with(args, &[])
}

fn similar(tmp: &TempDir, store: &[&str]) -> Output {
    let tune = tmp.path().join("t.abc");
    std::fs::write(&tune, "X:1\nT:T\nM:4/4\nL:1/8\nK:G\nGABc d2e2|f2g2 a4|\n").expect("write");
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let at = format!("{}:6", tune.display());
    let mut args = vec!["similar", &at, "--model", &model, "--db", &db];
    args.extend_from_slice(store);
    run(&args)
}

fn fails_with(out: &Output, needle: &str) {
    assert!(!out.ok, "succeeded: {}", out.stdout);
    assert!(
        out.stderr.contains(needle),
        "expected {needle:?} in: {}",
        out.stderr
    );
    assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
}

#[test]
fn a_server_that_is_down_is_named_with_what_to_do() {
    let tmp = TempDir::new("store-down");
    let started = std::time::Instant::now();
    let out = similar(
        &tmp,
        &[
            "--store",
            "milvus",
            "--milvus-uri",
            DEAD,
            "--milvus-timeout",
            "2",
        ],
    );
    fails_with(&out, "Milvus at http://127.0.0.1:9 is unreachable");
    fails_with(&out, "--store embedded");
    // The timeout is the user's: a down server is reported in seconds, not after minutes of
    // retries.
    assert!(started.elapsed().as_secs() < 30, "{:?}", started.elapsed());
}

#[test]
fn unknown_index_types_and_parameters_list_the_known_ones() {
    let tmp = TempDir::new("store-index");
    let milvus = ["--store", "milvus", "--milvus-uri", DEAD];
    let with = |extra: &[&str]| {
        let mut args = milvus.to_vec();
        args.extend_from_slice(extra);
        similar(&tmp, &args)
    };
    fails_with(
        &with(&["--milvus-index", "annoy"]),
        "unknown Milvus index type \"annoy\": use flat, hnsw or ivf_flat",
    );
    fails_with(
        &with(&["--milvus-index", "hnsw", "--milvus-param", "nlist=8"]),
        "index parameter nlist does not apply to hnsw",
    );
    fails_with(
        &with(&["--milvus-param", "M=many"]),
        "index parameter M=many: not a number",
    );
    fails_with(
        &with(&["--milvus-param", "M"]),
        "--milvus-param M: expected KEY=VALUE",
    );
    fails_with(
        &with(&["--milvus-prefix", "9-teams"]),
        "--milvus-prefix \"9-teams\": letters, digits and _ only",
    );
    fails_with(
        &with(&["--milvus-consistency", "sometimes"]),
        "invalid value 'sometimes' for '--milvus-consistency",
    );
    fails_with(
        &similar(&tmp, &["--store", "cloud"]),
        "invalid value 'cloud' for '--store",
    );
}

#[test]
fn a_config_file_that_is_missing_or_wrong_is_named() {
    let tmp = TempDir::new("store-config");
    let missing = tmp.path().join("nope.json").display().to_string();
    fails_with(
        &similar(&tmp, &["--store", "milvus", "--milvus-config", &missing]),
        &missing,
    );
    let wrong = tmp.path().join("wrong.json");
    std::fs::write(&wrong, r#"{"url": "http://127.0.0.1:19530"}"#).expect("write");
    let wrong = wrong.display().to_string();
    let out = similar(&tmp, &["--store", "milvus", "--milvus-config", &wrong]);
    fails_with(&out, &wrong);
    fails_with(&out, "not a Milvus config");
    let bad_consistency = tmp.path().join("consistency.json");
    std::fs::write(&bad_consistency, r#"{"consistency": "often"}"#).expect("write");
    fails_with(
        &similar(
            &tmp,
            &[
                "--store",
                "milvus",
                "--milvus-config",
                &bad_consistency.display().to_string(),
            ],
        ),
        "Milvus consistency \"often\": use strong, bounded or eventually",
    );
}

#[test]
fn tokens_are_never_printed() {
    let tmp = TempDir::new("store-token");
    let config = tmp.path().join("milvus.json");
    std::fs::write(
        &config,
        format!(
            r#"{{"uri": "{DEAD}", "token": "file-s3cret", "user": "u", "password": "pw-s3cret"}}"#
        ),
    )
    .expect("write");
    let config = config.display().to_string();
    let out = similar(
        &tmp,
        &[
            "--store",
            "milvus",
            "--milvus-config",
            &config,
            "--milvus-timeout",
            "1",
        ],
    );
    fails_with(&out, "unreachable");
    for secret in ["file-s3cret", "pw-s3cret"] {
        assert!(!out.stderr.contains(secret), "{}", out.stderr);
        assert!(!out.stdout.contains(secret), "{}", out.stdout);
    }
    // Not from the environment either, even with logs at their most verbose.
    let model = shared_fixture("clamp-tiny-bert").display().to_string();
    let db = tmp.path().join("db").display().to_string();
    let out = run_with(
        &[
            "search",
            "a jig",
            "--model",
            &model,
            "--db",
            &db,
            "--store",
            "milvus",
            "--milvus-uri",
            DEAD,
            "--milvus-timeout",
            "1",
        ],
        &[
            ("TUNELENS_MILVUS_TOKEN", "env-s3cret"),
            ("TUNELENS_LOG", "trace"),
        ],
    );
    fails_with(&out, "unreachable");
    assert!(!out.stderr.contains("env-s3cret"), "{}", out.stderr);
}
