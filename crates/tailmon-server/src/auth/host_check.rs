//! The host names a server without authentication answers to, against DNS
//! rebinding.
//!
//! A page on a site of the attacker's can point its own domain name at
//! 127.0.0.1 and then read and delete through the operator's browser, as
//! if it were the same site. Such a request carries the attacker's name in
//! its `Host` header. With authentication on, that page never has the
//! session cookie, so the check is needed only when authentication is off.

/// Which `Host` headers are answered: `localhost` and `*.localhost`, IP
/// addresses (a rebinding attack needs a name), and the names configured.
#[derive(Debug, Clone, Default)]
pub(crate) struct AllowedHosts {
    /// Lowercase names, without port.
    names: Vec<String>,
    any: bool,
}

impl AllowedHosts {
    /// The defaults and `names`; `*` among them allows every host.
    pub(crate) fn new(names: &[String]) -> Self {
        Self {
            any: names.iter().any(|n| n.trim() == "*"),
            names: names
                .iter()
                .map(|n| n.trim().trim_end_matches('.').to_ascii_lowercase())
                .filter(|n| !n.is_empty())
                .collect(),
        }
    }

    /// Whether a request with this `Host` header is answered. One without
    /// (HTTP/1.0) is: browsers always send it.
    pub(crate) fn allows(&self, host: Option<&str>) -> bool {
        let Some(host) = host else {
            return true;
        };
        if self.any {
            return true;
        }
        let name = host_name(host).trim_end_matches('.');
        let suffix = name
            .len()
            .checked_sub(".localhost".len())
            .and_then(|at| name.get(at..));
        name.eq_ignore_ascii_case("localhost")
            || suffix.is_some_and(|s| s.eq_ignore_ascii_case(".localhost"))
            || name
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<std::net::IpAddr>()
                .is_ok()
            || self.names.iter().any(|n| n.eq_ignore_ascii_case(name))
    }
}

/// The name part of a `Host` header: without the port, brackets kept
/// around an IPv6 address.
fn host_name(host: &str) -> &str {
    if host.starts_with('[') {
        return host.split_inclusive(']').next().unwrap_or(host);
    }
    host.rsplit_once(':').map_or(host, |(name, _)| name)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_names_addresses_and_configured_names_only() {
        let hosts = AllowedHosts::new(&["Monitor.example.net".into()]);
        for ok in [
            "localhost:3000",
            "LOCALHOST",
            "app.localhost:3000",
            "127.0.0.1:3000",
            "192.0.2.4",
            "[::1]:3000",
            "[2001:db8::1]",
            "monitor.example.net:3000",
            "monitor.example.net.",
        ] {
            assert!(hosts.allows(Some(ok)), "{ok}");
        }
        assert!(hosts.allows(None));
        for refused in [
            "attacker.example:3000",
            "localhost.attacker.example",
            "example.net",
            "",
        ] {
            assert!(!hosts.allows(Some(refused)), "{refused}");
        }
        assert!(AllowedHosts::new(&["*".into()]).allows(Some("anything.example")));
    }
}
