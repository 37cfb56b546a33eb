//! The `host` interceptor: stamps each event with this agent's IP address or host name
//! (Flume's `HostInterceptor`).
//!
//! Invariant: the value is resolved once, at build, like Flume's constructor does; per event
//! the interceptor only copies a string. Resolution happens on the caller's thread through the
//! system resolver (`/etc/hosts` first for the local name, so it is normally immediate).

use std::net::{IpAddr, Ipv4Addr, ToSocketAddrs};

use flumen_config::{Diagnostic, Props};
use flumen_core::{Event, Interceptor};
use serde::Deserialize;

use crate::components::{BuildResult, InterceptorDescriptor, build_with};

/// Registry entry.
pub const DESCRIPTOR: InterceptorDescriptor = InterceptorDescriptor {
    name: "host",
    classes: &["org.apache.flume.interceptor.HostInterceptor$Builder"],
    description: "Sets a header to this agent's IP address or host name",
    build,
};

/// Configuration of the `host` interceptor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default)]
pub struct HostInterceptorConfig {
    /// Leave an existing header alone. Flume key: `preserveExisting`. Default: false.
    #[serde(rename = "preserveExisting")]
    pub preserve_existing: bool,
    /// Use the IP address (true) or the host name (false). Flume key: `useIP`. Default: true.
    #[serde(rename = "useIP")]
    pub use_ip: bool,
    /// Header receiving the value. Flume key: `hostHeader`. Default: `host`.
    #[serde(rename = "hostHeader")]
    pub host_header: String,
}

impl Default for HostInterceptorConfig {
    fn default() -> Self {
        Self {
            preserve_existing: false,
            use_ip: true,
            host_header: "host".to_string(),
        }
    }
}

/// Sets `host_header` to the address or name resolved at build.
#[derive(Debug)]
pub struct HostInterceptor {
    header: String,
    preserve_existing: bool,
    /// The resolved IP address or host name.
    value: String,
}

impl HostInterceptor {
    /// An interceptor with `config`; resolves the host value now.
    pub fn new(config: HostInterceptorConfig) -> Self {
        let value = if config.use_ip {
            local_ip().to_string()
        } else {
            local_host_name()
        };
        Self {
            header: config.host_header,
            preserve_existing: config.preserve_existing,
            value,
        }
    }

    /// The value this interceptor writes.
    pub fn value(&self) -> &str {
        &self.value
    }
}

/// This machine's host name, as `gethostname(2)` reports it.
pub fn local_host_name() -> String {
    gethostname::gethostname().to_string_lossy().into_owned()
}

/// The first non-loopback IPv4 address the host name resolves to; 127.0.0.1 when there is
/// none or resolution fails (Flume's `InetAddress.getLocalHost()` on a host without a
/// resolvable name gives the loopback address too).
pub fn local_ip() -> IpAddr {
    let name = local_host_name();
    let resolved = (name.as_str(), 0u16).to_socket_addrs();
    match resolved {
        Ok(addrs) => addrs
            .map(|a| a.ip())
            .find(|ip| ip.is_ipv4() && !ip.is_loopback())
            .unwrap_or(IpAddr::V4(Ipv4Addr::LOCALHOST)),
        Err(e) => {
            tracing::warn!(
                host = %name,
                error = %e,
                "Could not resolve the local host name; using 127.0.0.1."
            );
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        }
    }
}

impl Interceptor for HostInterceptor {
    fn intercept(&self, mut event: Event) -> Option<Event> {
        if !(self.preserve_existing && event.headers.contains_key(&self.header)) {
            event
                .headers
                .insert(self.header.as_str(), self.value.as_str());
        }
        Some(event)
    }
}

fn validate(_config: &HostInterceptorConfig, _props: &Props) -> Vec<Diagnostic> {
    Vec::new()
}

/// Builds the interceptor from its properties.
///
/// # Errors
/// Invalid booleans.
pub fn build(props: &Props) -> BuildResult<Box<dyn Interceptor>> {
    build_with(props, validate, |c| {
        Ok(Box::new(HostInterceptor::new(c)) as Box<dyn Interceptor>)
    })
}

#[cfg(test)]
mod tests {
    use flumen_core::Headers;

    use super::*;
    use crate::components::interceptors::{error_messages, test_props};

    fn run(pairs: &[(&str, &str)], event: Event) -> Event {
        let (i, warnings) = build(&test_props(pairs)).unwrap();
        assert!(warnings.is_empty(), "{warnings:?}");
        i.intercept(event).unwrap()
    }

    #[test]
    fn defaults_set_host_header_to_a_non_loopback_ipv4_or_127_0_0_1() {
        assert_eq!(
            HostInterceptorConfig::default(),
            HostInterceptorConfig {
                preserve_existing: false,
                use_ip: true,
                host_header: "host".into()
            }
        );
        let e = run(&[], Event::new("x"));
        let ip: Ipv4Addr = e.headers.get("host").unwrap().parse().unwrap();
        assert!(!ip.is_loopback() || ip == Ipv4Addr::LOCALHOST, "{ip}");
        assert_eq!(IpAddr::V4(ip), local_ip());
    }

    #[test]
    fn use_ip_false_gives_the_host_name() {
        let e = run(&[("useIP", "false")], Event::new("x"));
        assert_eq!(e.headers.get("host"), Some(local_host_name().as_str()));
    }

    #[test]
    fn host_header_is_configurable() {
        let e = run(&[("hostHeader", "agent")], Event::new("x"));
        assert!(e.headers.get("agent").is_some());
        assert!(e.headers.get("host").is_none());
    }

    #[test]
    fn preserve_existing_both_ways() {
        let ev = || Event::with_headers(Headers::from_iter([("host", "elsewhere")]), "x");
        assert_ne!(run(&[], ev()).headers.get("host"), Some("elsewhere"));
        let kept = run(&[("preserveExisting", "true")], ev());
        assert_eq!(kept.headers.get("host"), Some("elsewhere"));
        let set = run(&[("preserveExisting", "true")], Event::new("x"));
        assert!(set.headers.get("host").is_some());
    }

    #[test]
    fn value_is_resolved_once_at_build() {
        let i = HostInterceptor::new(HostInterceptorConfig {
            use_ip: false,
            ..Default::default()
        });
        assert_eq!(i.value(), local_host_name());
        let a = i.intercept(Event::new("a")).unwrap();
        assert_eq!(a.headers.get("host"), Some(i.value()));
    }

    #[test]
    fn bad_boolean_is_an_error() {
        let msgs = error_messages(build(&test_props(&[("useIP", "maybe")])));
        assert!(msgs[0].contains("invalid boolean `maybe`"), "{msgs:?}");
    }
}
