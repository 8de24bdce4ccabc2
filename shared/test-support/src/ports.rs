//! Ports: which TCP ports a process listens on, read from `/proc`, so a
//! server started on port 0 can be found without announcing its port; and
//! a port nobody listens on, for the tests that must name one in advance.

use std::collections::HashSet;
use std::path::Path;

/// The TCP ports process `pid` listens on (IPv4 and IPv6), from
/// `/proc/<pid>/fd` and `/proc/<pid>/net/tcp{,6}`; empty when the process
/// is gone or listens on nothing yet.
pub fn listening_ports(pid: u32) -> Vec<u16> {
    let proc_dir = Path::new("/proc").join(pid.to_string());
    let Ok(fds) = std::fs::read_dir(proc_dir.join("fd")) else {
        return Vec::new();
    };
    let sockets: HashSet<String> = fds
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy();
            let inode = target.strip_prefix("socket:[")?.strip_suffix(']')?;
            Some(inode.to_owned())
        })
        .collect();
    let mut ports = Vec::new();
    for table in ["tcp", "tcp6"] {
        let Ok(text) = std::fs::read_to_string(proc_dir.join("net").join(table)) else {
            continue;
        };
        for port in listeners_in(&text, &sockets) {
            if !ports.contains(&port) {
                ports.push(port);
            }
        }
    }
    ports
}

/// The local ports of the sockets in `table` (the text of
/// `/proc/net/tcp`) that listen (state `0A`) and whose inode is in
/// `sockets`.
fn listeners_in(table: &str, sockets: &HashSet<String>) -> Vec<u16> {
    table
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let (local, state, inode) = (fields.get(1)?, fields.get(3)?, fields.get(9)?);
            if *state != "0A" || !sockets.contains(*inode) {
                return None;
            }
            let (_, port) = local.rsplit_once(':')?;
            u16::from_str_radix(port, 16).ok()
        })
        .collect()
}

/// A loopback port nothing listened on a moment ago.
///
/// Only for tests that must name a port before anything serves it — an
/// address that refuses connections (a peer that is down), or a client
/// configured before its server starts. Servers the tests start pick their
/// own ports (see the launchers), so they never race for this one.
pub fn unused_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener
        .local_addr()
        .expect("a bound listener's address")
        .port()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A listener this process holds is found under its own pid, and no
    /// longer once it is closed.
    #[test]
    fn finds_this_process_listener() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        assert!(listening_ports(std::process::id()).contains(&port));
        drop(listener);
        assert!(!listening_ports(std::process::id()).contains(&port));
    }

    /// Only listening sockets with a known inode count; the port is hex.
    #[test]
    fn parses_the_proc_table() {
        let table = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode\n\
            0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 111 1\n\
            1: 0100007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000 0 0 222 1\n\
            2: 0100007F:1F92 0100007F:D431 01 00000000:00000000 00:00000000 00000000 0 0 111 1\n";
        let sockets = HashSet::from(["111".to_owned()]);
        assert_eq!(listeners_in(table, &sockets), vec![8080]);
    }
}
