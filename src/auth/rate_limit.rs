//! Throttling of the credential endpoints: per client address on `/v1/auth/login` and
//! `/v1/oauth/token`, per `(tenant, username)` on login and per `client_id` on the token
//! endpoint. Keyed GCRA limiters from `governor`; keys whose bucket has refilled are pruned
//! periodically ([`RateLimits::prune`]), so memory stays bounded by the keys seen within one
//! refill window.
//!
//! A check runs before anything costly: a refused attempt pays no password hash, loads no
//! stream and appends nothing, so it cannot count toward a lockout either.

use std::hash::Hash;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use governor::clock::Clock;
use governor::{DefaultKeyedRateLimiter, Quota};
use tokio_util::sync::CancellationToken;
use uuid::Uuid;

use crate::config::{LimitConfig, RateLimitConfig};

/// The throttled endpoint (each has its own per-address buckets).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Endpoint {
    Login,
    Token,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Endpoint::Login => "login",
            Endpoint::Token => "token",
        }
    }
}

/// Which limit refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    Ip,
    User,
    Client,
}

impl Scope {
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Ip => "ip",
            Scope::User => "user",
            Scope::Client => "client",
        }
    }
}

/// A refused attempt: retry in `retry_after_s` whole seconds (at least 1).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("too many attempts {}; retry in {retry_after_s} s", match .scope {
    Scope::Ip => "from this address",
    Scope::User => "for this user",
    Scope::Client => "for this client",
})]
pub struct Limited {
    pub endpoint: Endpoint,
    pub scope: Scope,
    pub retry_after_s: u64,
}

type Keyed<K> = DefaultKeyedRateLimiter<K>;

pub struct RateLimits {
    enabled: bool,
    per_ip: Keyed<(Endpoint, IpAddr)>,
    /// `(tenant id, or the unresolved tenant as given; username in lower case)`.
    per_user: Keyed<(String, String)>,
    per_client: Keyed<Uuid>,
}

fn quota(limit: &LimitConfig) -> Quota {
    Quota::per_minute(limit.per_minute).allow_burst(limit.burst)
}

/// Whole seconds, rounded up, at least 1: a client that waits this long is admitted.
fn whole_seconds(wait: Duration) -> u64 {
    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
    seconds.max(1)
}

impl RateLimits {
    pub fn new(config: &RateLimitConfig) -> Self {
        Self {
            enabled: config.enabled,
            per_ip: Keyed::keyed(quota(&config.per_ip)),
            per_user: Keyed::keyed(quota(&config.per_user)),
            per_client: Keyed::keyed(quota(&config.per_client)),
        }
    }

    fn check<K: Hash + Eq + Clone>(
        &self,
        limiter: &Keyed<K>,
        key: &K,
        endpoint: Endpoint,
        scope: Scope,
    ) -> Result<(), Limited> {
        if !self.enabled {
            return Ok(());
        }
        limiter.check_key(key).map_err(|not_until| {
            let wait = not_until.wait_time_from(limiter.clock().now());
            metrics::counter!(
                "charter_rate_limited_total",
                "endpoint" => endpoint.as_str(),
                "scope" => scope.as_str(),
            )
            .increment(1);
            Limited {
                endpoint,
                scope,
                retry_after_s: whole_seconds(wait),
            }
        })
    }

    /// An attempt on `endpoint` from `ip` (`None`: no peer address, one shared bucket).
    ///
    /// An IPv6 client is keyed by its /64: one host usually holds a whole /64, and keying
    /// single addresses would let it rotate through them.
    pub fn check_ip(&self, endpoint: Endpoint, ip: Option<IpAddr>) -> Result<(), Limited> {
        let ip = match ip.map(|ip| ip.to_canonical()) {
            Some(IpAddr::V6(v6)) => {
                IpAddr::V6(std::net::Ipv6Addr::from_bits(v6.to_bits() & !0u128 << 64))
            }
            Some(v4) => v4,
            None => IpAddr::V6(std::net::Ipv6Addr::UNSPECIFIED),
        };
        self.check(&self.per_ip, &(endpoint, ip), endpoint, Scope::Ip)
    }

    /// A login attempt as `username` of `tenant` (its id when it resolved, else as given).
    pub fn check_user(&self, tenant: &str, username: &str) -> Result<(), Limited> {
        let key = (tenant.to_lowercase(), username.to_lowercase());
        self.check(&self.per_user, &key, Endpoint::Login, Scope::User)
    }

    /// A token request for `client_id`.
    pub fn check_client(&self, client_id: Uuid) -> Result<(), Limited> {
        self.check(&self.per_client, &client_id, Endpoint::Token, Scope::Client)
    }

    /// Forgets every key whose bucket is full again (it would behave as a new one), and
    /// returns how many keys are left.
    pub fn prune(&self) -> usize {
        self.per_ip.retain_recent();
        self.per_user.retain_recent();
        self.per_client.retain_recent();
        self.per_ip.shrink_to_fit();
        self.per_user.shrink_to_fit();
        self.per_client.shrink_to_fit();
        let keys = self.len();
        metrics::gauge!("charter_rate_limit_keys").set(keys as f64);
        keys
    }

    /// Keys currently remembered, over the three limiters.
    pub fn len(&self) -> usize {
        self.per_ip.len() + self.per_user.len() + self.per_client.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Prunes every `interval` until `shutdown`.
    pub fn spawn_pruning(
        self: &Arc<Self>,
        interval: Duration,
        shutdown: CancellationToken,
    ) -> tokio::task::JoinHandle<()> {
        let limits = Arc::clone(self);
        let interval = interval.max(Duration::from_secs(1));
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(interval) => {}
                    _ = shutdown.cancelled() => return,
                }
                limits.prune();
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(per_minute: u32, burst: u32) -> RateLimits {
        RateLimits::new(&RateLimitConfig {
            per_ip: LimitConfig::new(per_minute, burst),
            per_user: LimitConfig::new(per_minute, burst),
            per_client: LimitConfig::new(per_minute, burst),
            ..RateLimitConfig::default()
        })
    }

    #[test]
    fn a_burst_then_refusals_with_a_retry_in_whole_seconds() {
        let l = limits(6, 2);
        assert!(l.check_user("t", "Alice").is_ok());
        assert!(
            l.check_user("T", "alice").is_ok(),
            "case does not make a new key"
        );
        let refused = l.check_user("t", "ALICE").unwrap_err();
        assert_eq!(refused.scope, Scope::User);
        // One cell every 10 s.
        assert!((9..=10).contains(&refused.retry_after_s), "{refused:?}");
        assert!(
            l.check_user("t", "bob").is_ok(),
            "another user has a bucket of its own"
        );
        assert!(
            l.check_user("u", "alice").is_ok(),
            "so has the same name elsewhere"
        );
    }

    #[test]
    fn addresses_are_limited_per_endpoint() {
        let l = limits(1, 1);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(ip)).is_ok());
        assert_eq!(
            l.check_ip(Endpoint::Login, Some(ip)).unwrap_err().scope,
            Scope::Ip
        );
        assert!(l.check_ip(Endpoint::Token, Some(ip)).is_ok());
        assert!(l
            .check_ip(Endpoint::Login, Some("192.0.2.8".parse().unwrap()))
            .is_ok());
        let client = Uuid::now_v7();
        assert!(l.check_client(client).is_ok());
        assert!(l.check_client(client).is_err());
    }

    #[test]
    fn ipv6_clients_are_keyed_by_their_64_and_mapped_ipv4_as_ipv4() {
        let l = limits(1, 1);
        let first: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(first)).is_ok());
        // Another address of the same /64 shares the bucket; another /64 does not.
        let same_64: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(same_64)).is_err());
        let other_64: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(other_64)).is_ok());
        let v4: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(v4)).is_ok());
        let mapped: IpAddr = "::ffff:192.0.2.9".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(mapped)).is_err());
    }

    #[test]
    fn disabled_limits_admit_everything() {
        let l = RateLimits::new(&RateLimitConfig {
            enabled: false,
            per_user: LimitConfig::new(1, 1),
            ..RateLimitConfig::default()
        });
        for _ in 0..100 {
            assert!(l.check_user("t", "alice").is_ok());
        }
    }

    #[test]
    fn retry_after_rounds_up_to_at_least_one_second() {
        assert_eq!(whole_seconds(Duration::ZERO), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1)), 1);
        assert_eq!(whole_seconds(Duration::from_millis(1_001)), 2);
        assert_eq!(whole_seconds(Duration::from_secs(7)), 7);
    }

    #[test]
    fn pruning_forgets_refilled_buckets_only() {
        let l = RateLimits::new(&RateLimitConfig {
            // A cell every 10 ms: these buckets refill at once.
            per_user: LimitConfig::new(6_000, 1),
            // A cell a minute: this one stays drained.
            per_ip: LimitConfig::new(1, 1),
            ..RateLimitConfig::default()
        });
        for i in 0..1_000 {
            assert!(l.check_user("t", &format!("user{i}")).is_ok());
        }
        let ip: IpAddr = "192.0.2.9".parse().unwrap();
        assert!(l.check_ip(Endpoint::Login, Some(ip)).is_ok());
        assert_eq!(l.len(), 1_001);
        std::thread::sleep(Duration::from_millis(50));
        assert_eq!(l.prune(), 1, "only the drained bucket is left");
        assert!(
            l.check_ip(Endpoint::Login, Some(ip)).is_err(),
            "and it still counts"
        );
    }
}
