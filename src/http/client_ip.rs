//! The client's address: the TCP peer, unless the peer is one of
//! `rate_limit.trusted_proxies`, in which case `X-Forwarded-For` is believed as far as the
//! trusted hops go. A client can put anything in that header, so nothing else trusts it.

use std::net::IpAddr;

use actix_web::{web, HttpRequest};

use super::state::AppState;

/// The address a request comes from, as the rate limits and the events' metadata see it.
pub fn client_ip(req: &HttpRequest) -> Option<IpAddr> {
    let peer = req.peer_addr()?.ip().to_canonical();
    let trusted = req
        .app_data::<web::Data<AppState>>()
        .map(|s| s.config.rate_limit.trusted_proxies.as_slice())
        .unwrap_or_default();
    if trusted.is_empty() {
        return Some(peer);
    }
    let forwarded: Vec<&str> = req
        .headers()
        .get_all("x-forwarded-for")
        .filter_map(|v| v.to_str().ok())
        .collect();
    Some(forwarded_client(peer, &forwarded.join(","), trusted))
}

/// Walks the chain `X-Forwarded-For, peer` from the right while the hop is a trusted proxy:
/// the first untrusted hop is the client. An entry that is not an address ends the walk at
/// the trusted hop that reported it; a chain of trusted proxies only yields its leftmost.
pub fn forwarded_client(peer: IpAddr, forwarded_for: &str, trusted: &[IpAddr]) -> IpAddr {
    let mut client = peer;
    let mut hops = forwarded_for
        .split(',')
        .map(str::trim)
        .filter(|h| !h.is_empty())
        .rev();
    while trusted.contains(&client) {
        let Some(hop) = hops.next() else {
            break;
        };
        match parse_hop(hop) {
            Some(ip) => client = ip,
            None => break,
        }
    }
    client
}

/// An `X-Forwarded-For` entry: an address, or an address with a port (`1.2.3.4:5678`,
/// `[2001:db8::1]:443`), IPv4-mapped IPv6 read as IPv4.
fn parse_hop(hop: &str) -> Option<IpAddr> {
    hop.parse::<IpAddr>()
        .or_else(|_| hop.parse::<std::net::SocketAddr>().map(|a| a.ip()))
        .ok()
        .map(|ip| ip.to_canonical())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn only_trusted_peers_are_believed() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy, ip("10.0.0.2")];
        // An untrusted peer is the client, whatever it claims.
        assert_eq!(
            forwarded_client(ip("203.0.113.9"), "198.51.100.1", &trusted),
            ip("203.0.113.9")
        );
        // A trusted proxy reports the client.
        assert_eq!(
            forwarded_client(proxy, "198.51.100.1", &trusted),
            ip("198.51.100.1")
        );
        // Through two trusted proxies; what the client itself sent further left is ignored.
        assert_eq!(
            forwarded_client(proxy, "1.1.1.1, 198.51.100.1, 10.0.0.2", &trusted),
            ip("198.51.100.1")
        );
        // No header, or garbage: the last trusted hop.
        assert_eq!(forwarded_client(proxy, "", &trusted), proxy);
        assert_eq!(
            forwarded_client(proxy, "198.51.100.1, unknown", &trusted),
            proxy
        );
        // Nothing is trusted: the peer.
        assert_eq!(forwarded_client(proxy, "198.51.100.1", &[]), proxy);
    }

    #[test]
    fn hops_with_ports_and_mapped_addresses_are_read() {
        let proxy = ip("10.0.0.1");
        let trusted = [proxy];
        assert_eq!(
            forwarded_client(proxy, "198.51.100.1:5678", &trusted),
            ip("198.51.100.1")
        );
        assert_eq!(
            forwarded_client(proxy, "[2001:db8::7]:443", &trusted),
            ip("2001:db8::7")
        );
        assert_eq!(
            forwarded_client(proxy, "::ffff:198.51.100.1", &trusted),
            ip("198.51.100.1")
        );
    }
}
