//! Outbound network policy: the SSRF guard for webhook targets.
//!
//! A webhook URL is operator- or user-supplied, so the bridge must not become a way to reach
//! loopback services, cloud metadata (169.254.169.254), the private network, and the like.
//!
//! * [`forbidden_reason`] classifies one address: `None` for a globally routable unicast address,
//!   else a short reason. IPv6 forms that embed an IPv4 address (IPv4-mapped, IPv4-compatible,
//!   6to4, NAT64, Teredo) are judged by the embedded address.
//! * [`NetPolicy`] adds the operator's allowlist (`WABRIDGE_ALLOW_TARGETS`, e.g.
//!   `"127.0.0.1/32,10.0.0.0/8,::1,n8n.internal"`) and checks URLs
//!   ([`NetPolicy::check_url`]: scheme, IP literal or every resolved address).
//! * [`PolicyResolver`] is the `reqwest` DNS resolver built by [`build_client`] (the client of
//!   `https://` targets): it resolves, drops forbidden addresses and hands reqwest only the
//!   checked ones, so the connection goes to an address that was checked (no second lookup,
//!   hence no DNS rebinding between check and connect). Redirects are disabled and proxies
//!   ignored. `http://` targets go through `super::plain_http`, which connects to the addresses
//!   of [`NetPolicy::resolve_allowed`] in the same way.
//!
//! **Important:** neither calls the resolver for IP-literal URLs
//! (`http://10.0.0.5/`, `http://[::1]/`, and the numeric forms such as `http://2130706433/` that
//! the `url` crate normalises to IPv4). Callers must run [`NetPolicy::check_url`] (or
//! [`NetPolicy::check_ip`]) on every URL before sending a request to it.

use std::borrow::Cow;
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use ipnet::{IpNet, Ipv4Net};

/// The setting named in error messages that tells operators how to allow a target.
pub const ALLOW_SETTING: &str = "WABRIDGE_ALLOW_TARGETS";

/// Why `ip` may not be a webhook target, or `None` if it is a globally routable unicast address.
pub fn forbidden_reason(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => v4_reason(v4),
        IpAddr::V6(v6) => v6_reason(v6),
    }
}

fn v4_reason(ip: Ipv4Addr) -> Option<&'static str> {
    // std's stable classification first...
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if ip.is_private() {
        return Some("private");
    }
    if ip.is_link_local() {
        return Some("link-local");
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if ip.is_broadcast() {
        return Some("broadcast");
    }
    if ip.is_documentation() {
        return Some("documentation");
    }
    // ...then the ranges std has not stabilised (is_shared, is_benchmarking, is_reserved,
    // is_global are still unstable in std).
    if V4_GLOBAL_EXCEPTIONS.contains(&ip) {
        return None;
    }
    V4_RANGES
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map(|&(_, reason)| reason)
}

/// IPv4 ranges that are not targets and that std does not classify on stable Rust.
const V4_RANGES: &[(Ipv4Net, &str)] = &[
    (v4_net([0, 0, 0, 0], 8), "unspecified (0.0.0.0/8)"),
    (v4_net([100, 64, 0, 0], 10), "shared address space (CGNAT)"),
    (v4_net([198, 18, 0, 0], 15), "benchmarking"),
    (v4_net([240, 0, 0, 0], 4), "reserved"),
    // IETF protocol assignments, apart from the two global addresses below.
    (v4_net([192, 0, 0, 0], 24), "reserved"),
];

/// The two globally routable addresses of 192.0.0.0/24 (PCP and TURN anycast).
const V4_GLOBAL_EXCEPTIONS: &[Ipv4Addr] =
    &[Ipv4Addr::new(192, 0, 0, 9), Ipv4Addr::new(192, 0, 0, 10)];

const fn v4_net(o: [u8; 4], prefix: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(o[0], o[1], o[2], o[3]), prefix)
}

fn v6_reason(ip: Ipv6Addr) -> Option<&'static str> {
    if ip.is_unspecified() {
        return Some("unspecified");
    }
    if ip.is_loopback() {
        return Some("loopback");
    }
    if let Some(reason) = embedded_v4_reason(ip) {
        return reason;
    }
    if ip.is_multicast() {
        return Some("multicast");
    }
    if ip.is_unique_local() {
        return Some("private (unique local)");
    }
    if ip.is_unicast_link_local() {
        return Some("link-local");
    }
    let seg = ip.segments();
    // fec0::/10, site-local (deprecated).
    if seg[0] & 0xffc0 == 0xfec0 {
        return Some("site-local");
    }
    // 2001:db8::/32, documentation.
    if seg[0] == 0x2001 && seg[1] == 0x0db8 {
        return Some("documentation");
    }
    // 3fff::/20, documentation (RFC 9637).
    if seg[0] == 0x3fff && seg[1] & 0xf000 == 0 {
        return Some("documentation");
    }
    // Only 2000::/3 is allocated as global unicast; everything else left over at this point
    // (100::/64 discard-only, 5f00::/16 SRv6 SIDs, unassigned space, ...) is not a target.
    if seg[0] & 0xe000 != 0x2000 {
        return Some("reserved");
    }
    // 2001::/23, IETF protocol assignments (benchmarking, ORCHID, AMT, ...); Teredo, the one
    // form with real traffic, has been judged above by its embedded addresses.
    if seg[0] == 0x2001 && seg[1] < 0x0200 {
        return Some("reserved (IETF protocol assignments)");
    }
    None
}

/// For IPv6 forms that carry an IPv4 address: `Some(verdict of the embedded address)`
/// (`Some(None)` = embedded address is public). `None` when `ip` is no such form.
fn embedded_v4_reason(ip: Ipv6Addr) -> Option<Option<&'static str>> {
    let o = ip.octets();
    let seg = ip.segments();
    let v4 = |a: usize, b: usize, c: usize, d: usize| Ipv4Addr::new(o[a], o[b], o[c], o[d]);

    // ::ffff:a.b.c.d, IPv4-mapped.
    if let Some(mapped) = ip.to_ipv4_mapped() {
        return Some(v4_reason(mapped));
    }
    // ::a.b.c.d, IPv4-compatible (deprecated); :: and ::1 are handled by the caller.
    if seg[..6].iter().all(|&s| s == 0) {
        return Some(v4_reason(v4(12, 13, 14, 15)));
    }
    // 64:ff9b::/96, NAT64 well-known prefix (RFC 6052): the last 32 bits.
    if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(v4_reason(v4(12, 13, 14, 15)));
    }
    // 64:ff9b:1::/48, local-use NAT64 (RFC 8215): the last 32 bits when bits 48..96 are zero
    // (the /96 layout). Otherwise the operator may use a shorter RFC 6052 prefix, so every
    // position possible inside a /48 must hold a public address.
    if seg[..3] == [0x64, 0xff9b, 1] {
        if o[6..12].iter().all(|&b| b == 0) {
            return Some(v4_reason(v4(12, 13, 14, 15)));
        }
        let candidates = [
            v4(12, 13, 14, 15), // /96
            v4(9, 10, 11, 12),  // /64
            v4(7, 9, 10, 11),   // /56
            v4(6, 7, 9, 10),    // /48
        ];
        return Some(candidates.into_iter().find_map(v4_reason));
    }
    // 2002::/16, 6to4: bits 16..48.
    if seg[0] == 0x2002 {
        return Some(v4_reason(v4(2, 3, 4, 5)));
    }
    // 2001::/32, Teredo: server in bits 32..64, client (obfuscated, inverted) in bits 96..128.
    if seg[0] == 0x2001 && seg[1] == 0 {
        let server = v4(4, 5, 6, 7);
        let client = Ipv4Addr::from(!u32::from(v4(12, 13, 14, 15)));
        return Some(v4_reason(client).or_else(|| v4_reason(server)));
    }
    None
}

/// A refused target: the host as written, the offending address (if any) and why.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub struct Blocked {
    /// The host of the URL (a name, or the IP literal as text); may be empty.
    pub host: String,
    /// The refused address, when the refusal is about an address.
    pub addr: Option<IpAddr>,
    /// Why: an address class ("private", "loopback", ...) when `addr` is set, otherwise a
    /// predicate about the host ("does not resolve", ...).
    pub reason: Cow<'static, str>,
}

/// `localhost` and every name under `.localhost` are loopback by definition (RFC 6761), whatever
/// a resolver answers for them.
fn is_special_use_loopback(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost" || host.ends_with(".localhost")
}

impl Blocked {
    fn address(host: impl Into<String>, addr: IpAddr, reason: &'static str) -> Self {
        Self {
            host: host.into(),
            addr: Some(addr),
            reason: Cow::Borrowed(reason),
        }
    }

    fn target(host: impl Into<String>, reason: impl Into<Cow<'static, str>>) -> Self {
        Self {
            host: host.into(),
            addr: None,
            reason: reason.into(),
        }
    }

    /// True when the target was refused because of the class of one of its addresses (the case
    /// an operator can fix with the allowlist).
    pub fn is_forbidden_address(&self) -> bool {
        self.addr.is_some()
    }

    fn message(&self) -> String {
        match self.addr {
            Some(addr) => {
                let article = if self.reason.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                let origin = if self.host.is_empty() || self.host == addr.to_string() {
                    String::new()
                } else {
                    format!(" (resolved from {})", self.host)
                };
                format!(
                    "{addr}{origin} is {article} {} address; allow it with {ALLOW_SETTING}",
                    self.reason
                )
            }
            None if self.host.is_empty() => format!("the URL {}", self.reason),
            None => format!("{} {}", self.host, self.reason),
        }
    }
}

/// An allowlist entry that could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PolicyParseError {
    #[error(
        "invalid network {item:?} in {ALLOW_SETTING}: expected an address or CIDR such as 10.0.0.0/8 or fd00::/8"
    )]
    BadNetwork { item: String },
    #[error(
        "invalid host name {item:?} in {ALLOW_SETTING}: expected an IP address, a CIDR or a host name such as n8n.internal"
    )]
    BadHost { item: String },
}

/// The operator's allowlist: networks and host names that may be targets although they are not
/// public. `Default` is the empty policy: only public addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NetPolicy {
    nets: Vec<IpNet>,
    hosts: Vec<String>,
}

impl FromStr for NetPolicy {
    type Err = PolicyParseError;

    /// Comma-separated items: CIDRs (`10.0.0.0/8`, `fd00::/8`), bare addresses (`::1`, a
    /// single-address network) and host names (case-insensitive, trailing dot ignored).
    /// Whitespace and empty items are ignored; `""` is the empty policy.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut policy = NetPolicy::default();
        for raw in s.split(',') {
            let item = raw.trim();
            if item.is_empty() {
                continue;
            }
            let unbracketed = item
                .strip_prefix('[')
                .and_then(|rest| rest.strip_suffix(']'))
                .unwrap_or(item);
            if item.contains('/') && item.starts_with(|c: char| c.is_ascii_hexdigit() || c == ':') {
                let net: IpNet = item
                    .parse()
                    .map_err(|_| PolicyParseError::BadNetwork { item: item.into() })?;
                policy.push_net(net.trunc());
            } else if let Ok(ip) = unbracketed.parse::<IpAddr>() {
                policy.push_net(IpNet::from(ip));
            } else {
                let host = normalise_host(item)
                    .ok_or_else(|| PolicyParseError::BadHost { item: item.into() })?;
                if !policy.hosts.contains(&host) {
                    policy.hosts.push(host);
                }
            }
        }
        Ok(policy)
    }
}

/// Lowercase, trailing dot removed, and plausibly a DNS name (labels of `[a-z0-9_-]`, not ending
/// in a numeric label, which the URL parser would take for an IPv4 address).
fn normalise_host(item: &str) -> Option<String> {
    let host = item.strip_suffix('.').unwrap_or(item).to_ascii_lowercase();
    if host.is_empty() || host.len() > 253 {
        return None;
    }
    let labels_ok = host.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let last = host.rsplit('.').next().unwrap_or_default();
    let numeric_last = last.bytes().all(|b| b.is_ascii_digit())
        || (last.starts_with("0x") && last[2..].bytes().all(|b| b.is_ascii_hexdigit()));
    (labels_ok && !numeric_last).then_some(host)
}

impl fmt::Display for NetPolicy {
    /// The `FromStr` syntax (normalised).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let nets = self.nets.iter().map(ToString::to_string);
        let items: Vec<String> = nets.chain(self.hosts.iter().cloned()).collect();
        f.write_str(&items.join(","))
    }
}

impl NetPolicy {
    fn push_net(&mut self, net: IpNet) {
        if !self.nets.contains(&net) {
            self.nets.push(net);
        }
    }

    /// True if nothing is allowlisted.
    pub fn is_empty(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// The allowlisted networks.
    pub fn nets(&self) -> &[IpNet] {
        &self.nets
    }

    /// The allowlisted host names (lowercase, no trailing dot).
    pub fn hosts(&self) -> &[String] {
        &self.hosts
    }

    /// Allowed if `ip` is public or inside an allowlisted network (an IPv4-mapped IPv6 address
    /// also matches IPv4 networks).
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Blocked> {
        let Some(reason) = forbidden_reason(ip) else {
            return Ok(());
        };
        let mapped = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4),
            IpAddr::V4(_) => None,
        };
        let allowed = self
            .nets
            .iter()
            .any(|net| net.contains(&ip) || mapped.is_some_and(|m| net.contains(&m)));
        if allowed {
            Ok(())
        } else {
            Err(Blocked::address(ip.to_string(), ip, reason))
        }
    }

    /// True if `host` (case-insensitive, trailing dot ignored) is an allowlisted host name.
    pub fn host_allowlisted(&self, host: &str) -> bool {
        if self.hosts.is_empty() {
            return false;
        }
        let host = host.trim();
        let host = host.strip_suffix('.').unwrap_or(host);
        self.hosts.iter().any(|h| h.eq_ignore_ascii_case(host))
    }

    /// Checks a webhook URL: the scheme must be http or https; an IP-literal host must pass
    /// [`check_ip`](Self::check_ip); a domain must be allowlisted, or resolve, with every
    /// resolved address passing `check_ip`.
    /// A name under `.localhost` is checked as the loopback address it stands for.
    fn check_special_use(&self, host: &str) -> Result<(), Blocked> {
        if !is_special_use_loopback(host) {
            return Ok(());
        }
        self.check_ip(IpAddr::V4(std::net::Ipv4Addr::LOCALHOST))
            .map_err(|blocked| Blocked {
                host: host.to_owned(),
                ..blocked
            })
    }

    pub async fn check_url(&self, url: &url::Url) -> Result<(), Blocked> {
        let host_text = url.host_str().unwrap_or_default();
        let scheme = url.scheme();
        if scheme != "http" && scheme != "https" {
            return Err(Blocked::target(
                host_text,
                format!("uses the scheme {scheme:?}; only http and https are allowed"),
            ));
        }
        match url.host() {
            None => Err(Blocked::target(host_text, "has no host")),
            Some(url::Host::Ipv4(v4)) => self.check_ip(IpAddr::V4(v4)),
            Some(url::Host::Ipv6(v6)) => self.check_ip(IpAddr::V6(v6)),
            Some(url::Host::Domain(domain)) => {
                if self.host_allowlisted(domain) {
                    return Ok(());
                }
                self.check_special_use(domain)?;
                let port = url.port_or_known_default().unwrap_or(80);
                let addrs = lookup(domain, port).await?;
                for addr in addrs {
                    self.check_ip(addr.ip()).map_err(|blocked| Blocked {
                        host: domain.to_owned(),
                        ..blocked
                    })?;
                }
                Ok(())
            }
        }
    }

    /// Resolves `host` and keeps the addresses this policy allows (all of them when the host is
    /// allowlisted). Errors when the name does not resolve or no address is left.
    pub async fn resolve_allowed(&self, host: &str, port: u16) -> Result<Vec<SocketAddr>, Blocked> {
        if self.host_allowlisted(host) {
            return lookup(host, port).await;
        }
        self.check_special_use(host)?;
        let addrs = lookup(host, port).await?;
        let mut first_refusal = None;
        let allowed: Vec<SocketAddr> = addrs
            .into_iter()
            .filter(|addr| match self.check_ip(addr.ip()) {
                Ok(()) => true,
                Err(blocked) => {
                    first_refusal.get_or_insert(blocked);
                    false
                }
            })
            .collect();
        match first_refusal {
            Some(blocked) if allowed.is_empty() => Err(Blocked {
                host: host.to_owned(),
                ..blocked
            }),
            _ => Ok(allowed),
        }
    }
}

/// Longest wait for a name to resolve. The system resolver retries an unreachable name server
/// for about ten seconds, which would hold a registration request (and an attempt) that long.
const LOOKUP_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// All addresses of `host`; an error, no address, or no answer within [`LOOKUP_TIMEOUT`] is
/// "does not resolve".
async fn lookup(host: &str, port: u16) -> Result<Vec<SocketAddr>, Blocked> {
    let addrs: Vec<SocketAddr> =
        tokio::time::timeout(LOOKUP_TIMEOUT, tokio::net::lookup_host((host, port)))
            .await
            .map_err(|_| Blocked::target(host, "does not resolve within 3 s"))?
            .map_err(|_| Blocked::target(host, "does not resolve"))?
            .collect();
    if addrs.is_empty() {
        return Err(Blocked::target(host, "does not resolve"));
    }
    Ok(addrs)
}

/// A `reqwest` DNS resolver that only returns addresses the policy allows.
#[derive(Debug, Clone)]
pub struct PolicyResolver {
    policy: Arc<NetPolicy>,
}

impl PolicyResolver {
    pub fn new(policy: Arc<NetPolicy>) -> Self {
        Self { policy }
    }
}

impl reqwest::dns::Resolve for PolicyResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = Arc::clone(&self.policy);
        let host = name.as_str().to_owned();
        Box::pin(async move {
            // Port 0: reqwest substitutes the URL's port.
            let addrs = policy.resolve_allowed(&host, 0).await?;
            let addrs: reqwest::dns::Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

/// The address a URL's host names when it is an IP literal (`None` for a name, or no host).
/// Neither client looks such a host up, so the policy never sees it unless it is checked.
pub fn ip_literal(url: &url::Url) -> Option<IpAddr> {
    match url.host()? {
        url::Host::Ipv4(v4) => Some(v4.into()),
        url::Host::Ipv6(v6) => Some(v6.into()),
        url::Host::Domain(_) => None,
    }
}

/// An HTTP client for webhook deliveries: DNS through [`PolicyResolver`], no redirects, no
/// retries of its own, no proxies, connect timeout `min(timeout, 10 s)`, request timeout
/// `timeout`, idle connections kept 90 s, TCP_NODELAY.
///
/// Installs rustls' `ring` provider as the process default if none is installed yet (reqwest's
/// `rustls-no-provider` feature panics on building a client otherwise).
///
/// IP-literal URLs bypass the resolver: run [`NetPolicy::check_url`] first.
pub fn build_client(
    policy: Arc<NetPolicy>,
    timeout: Duration,
    user_agent: &str,
) -> reqwest::Result<reqwest::Client> {
    let _ = rustls::crypto::ring::default_provider().install_default();
    reqwest::Client::builder()
        .dns_resolver(Arc::new(PolicyResolver::new(policy)))
        .redirect(reqwest::redirect::Policy::none())
        // The engine schedules every retry itself. reqwest's own (HTTP/2 streams the server
        // refused) would also copy every request's headers before sending it, in case: with no
        // retries allowed it copies nothing. (hyper still resends a request that a pooled
        // HTTP/1.1 connection closed before sending it.)
        .retry(reqwest::retry::never().max_retries_per_request(0))
        .no_proxy()
        .connect_timeout(timeout.min(Duration::from_secs(10)))
        .timeout(timeout)
        .pool_idle_timeout(Duration::from_secs(90))
        .tcp_nodelay(true)
        .user_agent(user_agent)
        .build()
}

#[cfg(test)]
mod tests {
    use super::*;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).unwrap()
    }

    #[test]
    fn address_table() {
        let cases: &[(&str, Option<&str>)] = &[
            // IPv4
            ("0.0.0.0", Some("unspecified")),
            ("0.1.2.3", Some("unspecified (0.0.0.0/8)")),
            ("127.0.0.1", Some("loopback")),
            ("127.255.255.254", Some("loopback")),
            ("10.0.0.1", Some("private")),
            ("172.16.0.1", Some("private")),
            ("172.31.255.255", Some("private")),
            ("192.168.1.1", Some("private")),
            ("100.64.0.1", Some("shared address space (CGNAT)")),
            ("100.127.255.255", Some("shared address space (CGNAT)")),
            ("169.254.169.254", Some("link-local")),
            ("224.0.0.1", Some("multicast")),
            ("239.255.255.250", Some("multicast")),
            ("255.255.255.255", Some("broadcast")),
            ("192.0.2.1", Some("documentation")),
            ("198.51.100.7", Some("documentation")),
            ("203.0.113.9", Some("documentation")),
            ("198.18.0.1", Some("benchmarking")),
            ("240.0.0.1", Some("reserved")),
            ("192.0.0.8", Some("reserved")),
            ("8.8.8.8", None),
            ("1.1.1.1", None),
            ("172.32.0.1", None),
            ("100.128.0.1", None),
            ("192.0.0.9", None),
            // IPv6
            ("::", Some("unspecified")),
            ("::1", Some("loopback")),
            ("fe80::1", Some("link-local")),
            ("fc00::1", Some("private (unique local)")),
            ("fd12:3456::1", Some("private (unique local)")),
            ("fec0::1", Some("site-local")),
            ("ff02::1", Some("multicast")),
            ("ff0e::1", Some("multicast")),
            ("2001:db8::1", Some("documentation")),
            ("3fff::1", Some("documentation")),
            ("100::1", Some("reserved")),
            ("5f00::1", Some("reserved")),
            ("4000::1", Some("reserved")),
            ("2001:2::1", Some("reserved (IETF protocol assignments)")),
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
            // IPv4 embedded in IPv6
            ("::ffff:127.0.0.1", Some("loopback")),
            ("::ffff:10.0.0.1", Some("private")),
            ("::ffff:169.254.169.254", Some("link-local")),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some("loopback")),
            ("::10.0.0.1", Some("private")),
            ("::8.8.8.8", None),
            ("2002:7f00:1::", Some("loopback")),
            ("2002:0a00:0001::", Some("private")),
            ("2002:a9fe:a9fe::1", Some("link-local")),
            ("2002:808:808::1", None),
            ("64:ff9b::7f00:1", Some("loopback")),
            ("64:ff9b::a00:1", Some("private")),
            ("64:ff9b::a9fe:a9fe", Some("link-local")),
            ("64:ff9b::808:808", None),
            ("64:ff9b:1::7f00:1", Some("loopback")),
            ("64:ff9b:1::808:808", None),
            // /48 embedding hiding 127.0.0.1 (bits 48..64 and 72..88) before a public tail.
            ("64:ff9b:1:7f08:8:808:808:808", Some("loopback")),
            // A /48-layout 8.8.8.8 is refused: its /96 reading is 0.0.0.0.
            ("64:ff9b:1:808:8:800::", Some("unspecified")),
            ("64:ff9b:0:0:1::808:808", Some("reserved")),
            // Teredo: client is the inverted last 32 bits (here 127.0.0.1 / 8.8.8.8 / 10.0.0.1).
            ("2001:0:4136:e378:8000:63bf:80ff:fffe", Some("loopback")),
            ("2001:0:4136:e378:8000:63bf:f7f7:f7f7", None),
            ("2001:0:4136:e378:8000:63bf:f5ff:fffe", Some("private")),
            // Teredo with a private server.
            ("2001:0:a00:1:8000:63bf:f7f7:f7f7", Some("private")),
        ];
        for (addr, want) in cases {
            assert_eq!(forbidden_reason(ip(addr)), *want, "{addr}");
        }
    }

    #[test]
    fn parse_allowlist() {
        let p: NetPolicy =
            " 127.0.0.1/32, 10.0.0.0/8 ,::1,N8N.Internal., fd00::/8,[::2],10.1.2.3/8,,"
                .parse()
                .unwrap();
        assert_eq!(
            p.nets(),
            &[
                "127.0.0.1/32".parse::<IpNet>().unwrap(),
                "10.0.0.0/8".parse().unwrap(),
                "::1/128".parse().unwrap(),
                "fd00::/8".parse().unwrap(),
                "::2/128".parse().unwrap(),
            ]
        );
        assert_eq!(p.hosts(), &["n8n.internal".to_owned()]);
        assert_eq!(
            p.to_string(),
            "127.0.0.1/32,10.0.0.0/8,::1/128,fd00::/8,::2/128,n8n.internal"
        );
        assert_eq!(p.to_string().parse::<NetPolicy>(), Ok(p.clone()));
        assert!(p.host_allowlisted("n8n.internal"));
        assert!(p.host_allowlisted("N8N.INTERNAL."));
        assert!(!p.host_allowlisted("n8n.internal.evil.com"));
        assert!(!p.host_allowlisted("internal"));

        assert_eq!("".parse::<NetPolicy>(), Ok(NetPolicy::default()));
        assert!(" , ".parse::<NetPolicy>().unwrap().is_empty());
        assert!(NetPolicy::default().is_empty());
        assert!(!p.is_empty());
        let single: NetPolicy = "localhost".parse().unwrap();
        assert_eq!(single.hosts(), &["localhost".to_owned()]);
        assert!(single.nets().is_empty());
    }

    #[test]
    fn parse_allowlist_errors() {
        for bad in [
            "10.0.0.0/33",
            "::/129",
            "10.0.0/8",
            "10.0.0.0/",
            "fd00::/x",
            "10.0.0.0/8/8",
        ] {
            assert_eq!(
                bad.parse::<NetPolicy>(),
                Err(PolicyParseError::BadNetwork { item: bad.into() }),
                "{bad}"
            );
        }
        for bad in [
            "http://n8n.internal",
            "/8",
            "n8n.internal/hook",
            "n8n.internal:5678",
            "a..b",
            "10.0.0",
            "999.1.1.1",
            "0x7f.1",
            "has space",
            "ünïcode.example",
        ] {
            assert_eq!(
                bad.parse::<NetPolicy>(),
                Err(PolicyParseError::BadHost { item: bad.into() }),
                "{bad}"
            );
        }
        let msg = "ok.example,10.0.0.0/33"
            .parse::<NetPolicy>()
            .unwrap_err()
            .to_string();
        assert!(
            msg.contains("\"10.0.0.0/33\"") && msg.contains(ALLOW_SETTING),
            "{msg}"
        );
    }

    #[test]
    fn check_ip_with_allowlist() {
        let empty = NetPolicy::default();
        assert_eq!(empty.check_ip(ip("8.8.8.8")), Ok(()));
        let err = empty.check_ip(ip("10.0.0.5")).unwrap_err();
        assert_eq!(err.addr, Some(ip("10.0.0.5")));
        assert_eq!(err.reason, "private");
        assert!(err.is_forbidden_address());
        assert_eq!(
            err.to_string(),
            "10.0.0.5 is a private address; allow it with WABRIDGE_ALLOW_TARGETS"
        );
        assert_eq!(
            empty.check_ip(ip("::")).unwrap_err().to_string(),
            ":: is an unspecified address; allow it with WABRIDGE_ALLOW_TARGETS"
        );

        let p: NetPolicy = "127.0.0.1/32,10.0.0.0/8,::1".parse().unwrap();
        assert_eq!(p.check_ip(ip("10.200.0.1")), Ok(()));
        assert_eq!(p.check_ip(ip("127.0.0.1")), Ok(()));
        assert!(p.check_ip(ip("127.0.0.2")).is_err());
        assert_eq!(p.check_ip(ip("::1")), Ok(()));
        assert!(p.check_ip(ip("192.168.0.1")).is_err());
        assert!(p.check_ip(ip("169.254.169.254")).is_err());
        // IPv4-mapped IPv6 matches IPv4 networks.
        assert_eq!(p.check_ip(ip("::ffff:10.1.2.3")), Ok(()));
        assert_eq!(p.check_ip(ip("::ffff:127.0.0.1")), Ok(()));
        assert!(p.check_ip(ip("::ffff:192.168.0.1")).is_err());
        // ...but other embeddings are judged strictly.
        assert!(p.check_ip(ip("64:ff9b::a00:1")).is_err());
    }

    #[test]
    fn blocked_messages() {
        let resolved = Blocked {
            host: "n8n.internal".into(),
            ..Blocked::address("10.0.0.5", ip("10.0.0.5"), "private")
        };
        assert_eq!(
            resolved.to_string(),
            "10.0.0.5 (resolved from n8n.internal) is a private address; allow it with WABRIDGE_ALLOW_TARGETS"
        );
        assert_eq!(
            Blocked::target("nowhere.invalid", "does not resolve").to_string(),
            "nowhere.invalid does not resolve"
        );
        assert!(!Blocked::target("x", "does not resolve").is_forbidden_address());
    }

    #[test]
    fn ip_literal_names_only_addresses_written_as_such() {
        let literal = |u: &str| ip_literal(&url::Url::parse(u).unwrap());
        assert_eq!(
            literal("http://10.0.0.7:8080/hook"),
            Some(IpAddr::V4(Ipv4Addr::new(10, 0, 0, 7)))
        );
        assert_eq!(
            literal("https://[::1]/hook"),
            Some(IpAddr::V6(Ipv6Addr::LOCALHOST))
        );
        // The URL parser turns a numeric host into its dotted form: still a literal.
        assert_eq!(
            literal("http://2130706433/"),
            Some(IpAddr::V4(Ipv4Addr::LOCALHOST))
        );
        assert_eq!(literal("http://example.com/hook"), None);
        assert_eq!(literal("http://localhost/hook"), None);
    }

    #[tokio::test]
    async fn check_url_ip_literals_and_numeric_forms() {
        let p = NetPolicy::default();
        for refused in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f.1/",
            "http://0177.0.0.1/",
            "http://0x7f000001/",
            "http://127.1/",
            "http://0/",
            "http://[::1]:8080/x",
            "http://[::ffff:127.0.0.1]/",
            "http://[::ffff:7f00:1]/",
            "http://169.254.169.254/latest/meta-data/",
            "https://10.0.0.1/",
            "http://[fe80::1]/",
        ] {
            let err = p.check_url(&url(refused)).await.unwrap_err();
            assert!(err.is_forbidden_address(), "{refused}: {err}");
        }
        // The url crate really did normalise them.
        assert_eq!(url("http://2130706433/").host_str(), Some("127.0.0.1"));
        assert_eq!(url("http://0x7f.1/").host_str(), Some("127.0.0.1"));
        for allowed in [
            "http://8.8.8.8/",
            "https://[2606:4700:4700::1111]:8443/hook",
        ] {
            assert_eq!(p.check_url(&url(allowed)).await, Ok(()), "{allowed}");
        }
        let err = p.check_url(&url("http://2130706433/")).await.unwrap_err();
        assert_eq!(
            err.to_string(),
            "127.0.0.1 is a loopback address; allow it with WABRIDGE_ALLOW_TARGETS"
        );
    }

    #[tokio::test]
    async fn check_url_schemes() {
        let p = NetPolicy::default();
        for bad in [
            "ftp://8.8.8.8/",
            "file:///etc/passwd",
            "gopher://8.8.8.8/",
            "data:text/plain,x",
        ] {
            let err = p.check_url(&url(bad)).await.unwrap_err();
            assert!(!err.is_forbidden_address(), "{bad}");
            assert!(err.reason.contains("only http and https"), "{bad}: {err}");
        }
    }

    #[tokio::test]
    async fn names_under_localhost_are_loopback_whatever_they_resolve_to() {
        let empty = NetPolicy::default();
        for u in ["http://n8n.localhost/hook", "http://a.b.LOCALHOST./x"] {
            let err = empty.check_url(&url(u)).await.unwrap_err();
            assert!(err.is_forbidden_address(), "{u}: {err}");
        }
        assert!(empty.resolve_allowed("n8n.localhost", 80).await.is_err());
        let allowed: NetPolicy = "n8n.localhost".parse().unwrap();
        assert_eq!(
            allowed.check_url(&url("http://n8n.localhost/hook")).await,
            Ok(())
        );
    }

    #[tokio::test]
    async fn check_url_localhost() {
        let empty = NetPolicy::default();
        let err = empty
            .check_url(&url("http://localhost:5678/webhook"))
            .await
            .unwrap_err();
        assert_eq!(err.host, "localhost");
        assert_eq!(err.reason, "loopback");
        assert!(
            err.to_string()
                .contains("(resolved from localhost) is a loopback address"),
            "{err}"
        );

        let by_name: NetPolicy = "localhost".parse().unwrap();
        assert_eq!(
            by_name
                .check_url(&url("http://localhost:5678/webhook"))
                .await,
            Ok(())
        );
        assert_eq!(by_name.check_url(&url("http://LOCALHOST./")).await, Ok(()));
        // Allowlisting the name does not allowlist the address.
        assert!(by_name.check_url(&url("http://127.0.0.1/")).await.is_err());

        let by_net: NetPolicy = "127.0.0.0/8,::1".parse().unwrap();
        assert_eq!(by_net.check_url(&url("http://localhost/")).await, Ok(()));
    }

    #[tokio::test]
    async fn check_url_unresolvable() {
        let err = NetPolicy::default()
            .check_url(&url("http://does-not-exist.invalid/"))
            .await
            .unwrap_err();
        assert_eq!(err.reason, "does not resolve");
        assert_eq!(err.addr, None);
        assert_eq!(err.to_string(), "does-not-exist.invalid does not resolve");
    }

    #[tokio::test]
    async fn resolver_filters_addresses() {
        let empty = NetPolicy::default();
        let err = empty.resolve_allowed("localhost", 80).await.unwrap_err();
        assert_eq!(err.host, "localhost");
        assert!(err.is_forbidden_address());

        let v4_only: NetPolicy = "127.0.0.1/32".parse().unwrap();
        let addrs = v4_only.resolve_allowed("localhost", 80).await.unwrap();
        assert!(!addrs.is_empty());
        assert!(
            addrs
                .iter()
                .all(|a| a.ip() == ip("127.0.0.1") && a.port() == 80)
        );

        let by_name: NetPolicy = "localhost".parse().unwrap();
        assert!(
            !by_name
                .resolve_allowed("localhost", 0)
                .await
                .unwrap()
                .is_empty()
        );
    }

    /// Accepts one connection (if any) and answers it with 204; returns whether one arrived.
    async fn serve_once(listener: tokio::net::TcpListener) -> bool {
        let accepted = tokio::time::timeout(Duration::from_secs(5), listener.accept()).await;
        let Ok(Ok((mut stream, _))) = accepted else {
            return false;
        };
        let mut buf = [0u8; 4096];
        let _ = stream.read(&mut buf).await;
        let _ = stream
            .write_all(b"HTTP/1.1 204 No Content\r\nconnection: close\r\n\r\n")
            .await;
        true
    }

    #[tokio::test]
    async fn client_refuses_blocked_hosts_without_connecting() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let client = build_client(
            Arc::new(NetPolicy::default()),
            Duration::from_secs(5),
            "wabridge-test",
        )
        .unwrap();
        let result = client.get(format!("http://localhost:{port}/")).send().await;
        let err = result.unwrap_err();
        assert!(err.is_connect(), "{err:?}");
        // Nothing reached the listener.
        let accepted = tokio::time::timeout(Duration::from_millis(300), listener.accept()).await;
        assert!(accepted.is_err(), "a connection arrived");
        // The policy's reason is in the error chain.
        let mut source: Option<&dyn std::error::Error> = Some(&err);
        let mut found = false;
        while let Some(e) = source {
            found |= e.downcast_ref::<Blocked>().is_some();
            source = e.source();
        }
        assert!(found, "{err:?}");
    }

    #[tokio::test]
    async fn client_reaches_allowlisted_hosts() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(serve_once(listener));
        let policy: NetPolicy = "127.0.0.1/32".parse().unwrap();
        let client =
            build_client(Arc::new(policy), Duration::from_secs(5), "wabridge-test").unwrap();
        let response = client
            .post(format!("http://localhost:{port}/hook"))
            .body("{}")
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 204);
        assert!(server.await.unwrap(), "request did not arrive");
    }

    #[tokio::test]
    async fn client_does_not_follow_redirects() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(async move {
            let (mut stream, _) = listener.accept().await.unwrap();
            let mut buf = [0u8; 4096];
            let _ = stream.read(&mut buf).await;
            stream
                .write_all(
                    b"HTTP/1.1 302 Found\r\nlocation: http://169.254.169.254/\r\ncontent-length: 0\r\nconnection: close\r\n\r\n",
                )
                .await
                .unwrap();
        });
        let policy: NetPolicy = "127.0.0.1/32".parse().unwrap();
        let client =
            build_client(Arc::new(policy), Duration::from_secs(5), "wabridge-test").unwrap();
        let response = client
            .get(format!("http://localhost:{port}/"))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status().as_u16(), 302);
        server.await.unwrap();
    }

    /// Documents why callers must run `check_url` first: IP literals skip the resolver.
    #[tokio::test]
    async fn ip_literals_bypass_the_resolver() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = tokio::spawn(serve_once(listener));
        let client = build_client(
            Arc::new(NetPolicy::default()),
            Duration::from_secs(5),
            "wabridge-test",
        )
        .unwrap();
        let target = format!("http://127.0.0.1:{port}/");
        assert!(NetPolicy::default().check_url(&url(&target)).await.is_err());
        let response = client.get(&target).send().await.unwrap();
        assert_eq!(response.status().as_u16(), 204);
        assert!(server.await.unwrap());
    }
}
