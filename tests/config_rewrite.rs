//! CONFIG REWRITE: the settings changed at run time go into the config file the server
//! started with, which a restart then reads; without a config file, Redis's error.

mod common;

use common::*;

#[test]
fn config_rewrite_persists_run_time_settings_across_a_restart() {
    if !baton_only("the config file Baton was started with") {
        return;
    }
    let dir = std::env::temp_dir().join(format!("baton-rewrite-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("baton.conf");
    std::fs::write(&file, "# keep this comment\nmaxmemory 1mb\ntimeout 7\n").unwrap();
    let path = file.to_str().unwrap();
    {
        let server = Server::builder(1).args(&["--config", path]).start();
        let mut con = server.redis();
        assert_reply(
            &mut con,
            "CONFIG GET timeout",
            Value::Array(vec![bulk("timeout"), bulk("7")]),
        );
        assert_reply(
            &mut con,
            "CONFIG SET maxmemory 10mb slowlog-max-len 9",
            ok(),
        );
        assert_reply(&mut con, "CONFIG REWRITE", ok());
    }
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(
        text.starts_with("# keep this comment\nmaxmemory 10485760\ntimeout 7\n"),
        "{text}"
    );
    assert!(text.contains("\nslowlog-max-len 9\n"), "{text}");
    assert!(
        !text.contains("maxclients"),
        "defaults are left out: {text}"
    );

    let server = Server::builder(1).args(&["--config", path]).start();
    let mut con = server.redis();
    assert_reply(
        &mut con,
        "CONFIG GET maxmemory",
        Value::Array(vec![bulk("maxmemory"), bulk("10485760")]),
    );
    assert_reply(
        &mut con,
        "CONFIG GET slowlog-max-len",
        Value::Array(vec![bulk("slowlog-max-len"), bulk("9")]),
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn config_rewrite_without_a_config_file_is_an_error() {
    let server = Server::start(1);
    let mut con = server.redis();
    assert_err(
        &mut con,
        "CONFIG REWRITE",
        "ERR The server is running without a config file",
    );
}

fn info_field(con: &mut redis::Connection, name: &str) -> String {
    let text: String = redis::cmd("INFO").arg("server").query(con).unwrap();
    text.lines()
        .find_map(|l| l.strip_prefix(&format!("{name}:")))
        .unwrap_or_else(|| panic!("INFO server has no {name}: {text}"))
        .trim()
        .to_string()
}

#[test]
fn info_server_names_the_run_and_the_config_file() {
    let server = Server::start(1);
    let mut con = server.redis();
    let run_id = info_field(&mut con, "run_id");
    assert_eq!(run_id.len(), 40, "{run_id}");
    assert!(run_id.bytes().all(|b| b.is_ascii_hexdigit()), "{run_id}");
    assert_eq!(info_field(&mut con, "run_id"), run_id, "one id per run");
    let other = Server::start(1);
    assert_ne!(info_field(&mut other.redis(), "run_id"), run_id);
    assert_eq!(info_field(&mut con, "config_file"), "");
}
