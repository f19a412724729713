//! RESET puts a connection back as it began: no transaction or watched keys, no
//! subscriptions, RESP2, no name, and unauthenticated when the server wants a password.

mod common;

use common::*;

fn line(raw: &mut Raw, words: &[&str]) -> String {
    raw.send_command(words);
    raw.read_line().trim_end().to_string()
}

#[test]
fn reset_drops_the_transaction_the_name_and_resp3() {
    let server = Server::start(2);
    let mut raw = server.raw();
    raw.send_command(&["HELLO", "3"]);
    let _ = raw.read_value();
    assert_eq!(line(&mut raw, &["CLIENT", "SETNAME", "before"]), "+OK");
    assert_eq!(line(&mut raw, &["WATCH", "w"]), "+OK");
    assert_eq!(line(&mut raw, &["MULTI"]), "+OK");
    assert_eq!(line(&mut raw, &["SET", "a", "1"]), "+QUEUED");
    assert_eq!(
        line(&mut raw, &["RESET"]),
        "+RESET",
        "RESET runs at once, even in MULTI"
    );
    assert_eq!(line(&mut raw, &["EXEC"]), "-ERR EXEC without MULTI");
    assert_eq!(
        line(&mut raw, &["CLIENT", "GETNAME"]),
        "$-1",
        "RESP2 nil: name gone, RESP2 again"
    );
    assert_eq!(
        line(&mut raw, &["GET", "a"]),
        "$-1",
        "the queued SET never ran"
    );
}

#[test]
fn reset_leaves_pubsub_mode() {
    let server = Server::start(2);
    let mut sub = server.raw();
    sub.send_command(&["SUBSCRIBE", "news"]);
    let _ = sub.read_value();
    assert!(
        line(&mut sub, &["GET", "x"]).starts_with("-ERR Can't execute 'get'"),
        "a RESP2 subscriber may not GET"
    );
    assert_eq!(line(&mut sub, &["RESET"]), "+RESET");
    assert_eq!(line(&mut sub, &["GET", "x"]), "$-1");
    let mut con = server.redis();
    assert_reply(&mut con, "PUBLISH news hello", int(0));
}

#[test]
fn reset_forgets_authentication() {
    if !baton_only("--requirepass through the harness") {
        return;
    }
    let server = Server::builder(1).requirepass("secret").start();
    let mut raw = server.raw();
    assert_eq!(line(&mut raw, &["AUTH", "secret"]), "+OK");
    assert_eq!(line(&mut raw, &["SET", "k", "v"]), "+OK");
    assert_eq!(line(&mut raw, &["RESET"]), "+RESET", "RESET needs no auth");
    assert!(line(&mut raw, &["GET", "k"]).starts_with("-NOAUTH"));
}
