//! The connection's side of the blocking pops (BLPOP and friends, run by
//! [`baton_engine::exec::blocking`]): the client's `b` flag and INFO's `blocked_clients`
//! while it waits, CLIENT UNBLOCK, and the end of a wait whose connection closed.

use std::cell::Cell;
use std::sync::atomic::Ordering;

use baton_engine::exec::blocking::{self, Blocking, Interrupt};
use baton_engine::reply::{errors, Reply};
use bytes::Bytes;

use crate::client::Client;
use crate::netcore::NetCore;

/// Counts the client as blocked from when it starts to wait until the command ends.
struct Counted<'a> {
    nc: &'a NetCore,
    client: &'a Client,
    on: Cell<bool>,
}

impl Counted<'_> {
    fn start(&self) {
        self.on.set(true);
        self.client.conn.blocked.set(true);
        self.nc
            .shared
            .blocked_clients
            .fetch_add(1, Ordering::Relaxed);
    }
}

impl Drop for Counted<'_> {
    fn drop(&mut self) {
        if self.on.get() {
            self.client.conn.blocked.set(false);
            self.nc
                .shared
                .blocked_clients
                .fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Runs a blocking command for `client`: at once when it can, else once it can, its
/// timeout passes, CLIENT UNBLOCK releases it, or its connection closes.
pub async fn run(nc: &NetCore, client: &Client, args: &[Bytes]) -> Reply {
    let form = match blocking::parse(args) {
        Ok(f) => f,
        Err(e) => return e,
    };
    let id = client.borrow().id;
    let counted = Counted {
        nc,
        client,
        on: Cell::new(false),
    };
    let fd = client.conn.fd;
    blocking::block(
        &nc.core,
        id,
        &form,
        || counted.start(),
        || !crate::listener::peer_closed(fd),
    )
    .await
}

/// The connection of `client` is closing while it runs a command: if that command is
/// waiting for a key, it stops waiting (and pops nothing).
pub fn hangup(nc: &NetCore, client: &Client) {
    if let Some(b) = nc.core.attached::<Blocking>() {
        b.interrupt(client.borrow().id, Interrupt::Hangup);
    }
}

/// A handoff freezes this core: every client of it that waits in a blocking command is
/// answered as if its timeout had passed, so the core's tasks end and its connections can
/// move (with their sessions) to the new process.
pub fn release_all(nc: &NetCore) {
    if let Some(b) = nc.core.attached::<Blocking>() {
        b.interrupt_all(Interrupt::Timeout);
    }
}

/// CLIENT UNBLOCK id [TIMEOUT|ERROR], checked: the id and how to release the client.
pub fn check_unblock(args: &[Bytes]) -> Result<(u64, Interrupt), Reply> {
    let id = baton_engine::commands::parse_i64(&args[2]).ok_or(errors::NOT_INTEGER)?;
    let why = match args.get(3) {
        None => Interrupt::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"timeout") => Interrupt::Timeout,
        Some(r) if r.eq_ignore_ascii_case(b"error") => Interrupt::Error,
        Some(_) => {
            return Err(Reply::err(
                "ERR CLIENT UNBLOCK reason should be TIMEOUT or ERROR",
            ))
        }
    };
    Ok((id as u64, why))
}

/// CLIENT UNBLOCK on every core: 1 when the client was blocked and is released.
pub async fn unblock(nc: &NetCore, args: &[Bytes]) -> Reply {
    let (id, why) = match check_unblock(args) {
        Ok(v) => v,
        Err(e) => return e,
    };
    let found = nc
        .on_every_core(move |nc, _| {
            nc.core
                .attached::<Blocking>()
                .is_some_and(|b| b.interrupt(id, why))
        })
        .await;
    Reply::Int(found.into_iter().any(|f| f) as i64)
}
