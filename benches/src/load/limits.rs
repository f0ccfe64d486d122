//! Operating-system limits a big run runs into: open files
//! (RLIMIT_NOFILE, of the generator and of the server) and ephemeral ports
//! (spread over several loopback source addresses).

use std::net::{IpAddr, Ipv4Addr, SocketAddr};

use rlimit::Resource;

use super::LoadError;

/// Files the generator needs besides its connections (publishers, stdio,
/// the runtime, /proc reads).
pub const SLACK_FILES: u64 = 64;

/// Files the server needs besides its connections (listener, publishers'
/// connections, logs); what the advice adds.
pub const SERVER_SLACK_FILES: u64 = 1024;

/// Raises the generator's open-file limit to its hard limit, or (when the
/// hard limit is too low and the process may) to `needed`. Returns the new
/// soft limit; fails with the commands to run when `needed` cannot be had.
pub fn raise_nofile(needed: u64, connections: usize) -> Result<u64, LoadError> {
    let (soft, hard) = Resource::NOFILE
        .get()
        .map_err(|e| LoadError::Limits(format!("cannot read RLIMIT_NOFILE: {e}")))?;
    if hard >= needed {
        if soft < hard {
            Resource::NOFILE.set(hard, hard).map_err(|e| {
                LoadError::Limits(format!("cannot raise RLIMIT_NOFILE to {hard}: {e}"))
            })?;
        }
        return Ok(hard);
    }
    // Root (CAP_SYS_RESOURCE) may raise the hard limit too.
    if Resource::NOFILE.set(needed, needed).is_ok() {
        return Ok(needed);
    }
    let server = connections as u64 + SERVER_SLACK_FILES;
    Err(LoadError::Limits(format!(
        "{connections} connections need {needed} open files, but this process may open at most \
         {hard} (the hard limit of RLIMIT_NOFILE), and raising a hard limit needs root with \
         CAP_SYS_RESOURCE. Raise the hard limit where it is set (as root: `ulimit -Hn {needed}` \
         in the shell; `nofile` in /etc/security/limits.conf; `LimitNOFILE=` of a systemd unit; \
         `docker run --ulimit nofile={needed}:{needed}`), then run `ulimit -n {needed}` in the \
         shell that starts tickcast-load, and start the server from a shell with \
         `ulimit -n {server}` too (a running server: `prlimit --pid PID --nofile={server}:{server}`)"
    )))
}

/// The soft open-file limit of process `pid`, from /proc/PID/limits.
pub fn nofile_of(pid: u32) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/limits")).ok()?;
    let line = text.lines().find(|l| l.starts_with("Max open files"))?;
    let soft = line.split_whitespace().nth(3)?;
    soft.parse().ok()
}

/// A warning when the server's open-file limit is below what `connections`
/// need.
pub fn check_server_nofile(pid: u32, connections: usize) -> Option<String> {
    let soft = nofile_of(pid)?;
    let needed = connections as u64 + SERVER_SLACK_FILES / 16;
    (soft < needed).then(|| {
        let advice = connections as u64 + SERVER_SLACK_FILES;
        format!(
            "the server (pid {pid}) may open only {soft} files, fewer than {connections} \
             connections need: raise it with `prlimit --pid {pid} --nofile={advice}:{advice}`, \
             or restart it from a shell after `ulimit -n {advice}`"
        )
    })
}

/// Local ports per source address: the size of
/// /proc/sys/net/ipv4/ip_local_port_range (28,232 by default).
pub fn ephemeral_ports() -> u64 {
    std::fs::read_to_string("/proc/sys/net/ipv4/ip_local_port_range")
        .ok()
        .and_then(|text| {
            let mut it = text.split_whitespace().map(|n| n.parse::<u64>().ok());
            let (lo, hi) = (it.next()??, it.next()??);
            (hi >= lo).then(|| hi - lo + 1)
        })
        .unwrap_or(28_232)
}

/// The source addresses client sockets bind to, connection `i` using
/// `sources[i % len]`; empty when the server is not on a loopback IPv4
/// address (the kernel then picks). `configured` 0 = as many as the
/// ephemeral range needs for `connections`, with 10 % headroom.
pub fn source_addresses(
    server: SocketAddr,
    connections: usize,
    configured: usize,
) -> Result<Vec<Ipv4Addr>, LoadError> {
    let per_address = ephemeral_ports() * 9 / 10;
    let needed = (connections as u64).div_ceil(per_address.max(1)).max(1) as usize;
    match server.ip() {
        IpAddr::V4(ip) if ip.is_loopback() => {
            let count = if configured == 0 { needed } else { configured };
            if count > 254 {
                return Err(LoadError::Limits(format!(
                    "{connections} connections need {count} loopback source addresses; at most \
                     254 are used: widen net.ipv4.ip_local_port_range"
                )));
            }
            Ok((1..=count as u8)
                .map(|n| Ipv4Addr::new(127, 0, 0, n))
                .collect())
        }
        _ if needed > 1 => Err(LoadError::Limits(format!(
            "{connections} connections to {server} do not fit in one source address's \
             {per_address} ephemeral ports; spreading over several source addresses needs a \
             loopback server address (127.x.x.x)"
        ))),
        _ => Ok(Vec::new()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_servers_get_enough_source_addresses() {
        let server: SocketAddr = "127.0.0.1:8080".parse().unwrap();
        let one = source_addresses(server, 50, 0).unwrap();
        assert_eq!(one, vec![Ipv4Addr::new(127, 0, 0, 1)]);
        let many = source_addresses(server, 100_000, 0).unwrap();
        assert!(many.len() as u64 * ephemeral_ports() >= 100_000);
        assert_eq!(source_addresses(server, 10, 8).unwrap().len(), 8);
        let remote: SocketAddr = "[::1]:8080".parse().unwrap();
        assert!(source_addresses(remote, 10, 0).unwrap().is_empty());
    }

    #[test]
    fn own_limits_are_readable() {
        assert!(nofile_of(std::process::id()).is_some_and(|n| n > 0));
        assert!(raise_nofile(16, 1).unwrap() >= 16);
    }
}
