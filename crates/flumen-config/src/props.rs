//! The keys of one component, relative to the component, with their lines.
//!
//! A [`Props`] remembers the key prefix it was cut from (`a1.sources.r1.`) and a component
//! label (`source r1`) so that any diagnostic made from it can name the full key as written in
//! the file, its line, and the component, without the caller threading that context through.

use std::collections::BTreeMap;

use crate::diagnostic::Diagnostic;

/// One component's properties: relative key → (value, line).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Props {
    prefix: String,
    component: String,
    map: BTreeMap<String, (String, u32)>,
    /// Line to blame when this set is empty (a `sub` with no keys still needs a location for
    /// "missing required property"): the parent's first line.
    fallback_line: Option<u32>,
    /// The prefixes added by `sub` since the component level (`priority.`), so messages can
    /// name keys the way the user thinks of them: relative to the component.
    sub_path: String,
}

impl Props {
    /// An empty set; `prefix` is prepended to keys in messages (`a1.sources.r1.`), `component`
    /// labels them (`source r1`).
    pub fn new(prefix: impl Into<String>, component: impl Into<String>) -> Self {
        Props {
            prefix: prefix.into(),
            component: component.into(),
            map: BTreeMap::new(),
            fallback_line: None,
            sub_path: String::new(),
        }
    }

    /// Adds or replaces a key (relative to the component).
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>, line: u32) {
        self.map.insert(key.into(), (value.into(), line));
    }

    /// The value of `key`, as written (not trimmed).
    pub fn get(&self, key: &str) -> Option<&str> {
        self.map.get(key).map(|(v, _)| v.as_str())
    }

    /// The line of `key`.
    pub fn line(&self, key: &str) -> Option<u32> {
        self.map.get(key).map(|&(_, l)| l)
    }

    /// Smallest line of any key: where the component "is" for diagnostics about it as a whole.
    pub fn first_line(&self) -> Option<u32> {
        self.map.values().map(|&(_, l)| l).min()
    }

    /// `first_line`, or the parent's first line for an empty sub-set.
    pub(crate) fn anchor_line(&self) -> Option<u32> {
        self.first_line().or(self.fallback_line)
    }

    /// The key as written in the file: prefix + `key`.
    pub fn full_key(&self, key: &str) -> String {
        format!("{}{}", self.prefix, key)
    }

    /// `key` relative to the component this set was cut from by [`Props::sub`].
    pub(crate) fn rel_key(&self, key: &str) -> String {
        format!("{}{}", self.sub_path, key)
    }

    /// The prefix prepended by [`Props::full_key`].
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The component label, e.g. `source r1`.
    pub fn component(&self) -> &str {
        &self.component
    }

    /// True when there are no keys.
    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// Number of keys.
    pub fn len(&self) -> usize {
        self.map.len()
    }

    /// (key, value, line) in key order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str, u32)> {
        self.map
            .iter()
            .map(|(k, (v, l))| (k.as_str(), v.as_str(), *l))
    }

    /// True when `key` exists or some key starts with `key.`.
    pub fn has_prefix(&self, key: &str) -> bool {
        self.map.contains_key(key) || self.iter_under(key).next().is_some()
    }

    /// Keys strictly under `prefix.`, with the prefix stripped.
    fn iter_under<'a>(
        &'a self,
        prefix: &str,
    ) -> impl Iterator<Item = (&'a str, &'a (String, u32))> {
        let dotted = format!("{prefix}.");
        self.map
            .range(dotted.clone()..)
            .take_while(move |(k, _)| k.starts_with(&dotted))
            .map(move |(k, v)| (&k[prefix.len() + 1..], v))
    }

    /// Keys under `prefix.` with the prefix stripped; full-key prefix extended; new label.
    pub fn sub(&self, prefix: &str, component: impl Into<String>) -> Props {
        let mut out = Props::new(format!("{}{}.", self.prefix, prefix), component);
        for (k, (v, l)) in self.iter_under(prefix) {
            out.map.insert(k.to_string(), (v.clone(), *l));
        }
        out.fallback_line = self.anchor_line();
        out.sub_path = format!("{}{}.", self.sub_path, prefix);
        out
    }

    /// Copy without the exact `keys` and without anything under `key.` for each of them.
    pub fn without(&self, keys: &[&str]) -> Props {
        let mut out = self.clone();
        out.map.retain(|k, _| {
            !keys
                .iter()
                .any(|p| k == p || (k.starts_with(p) && k[p.len()..].starts_with('.')))
        });
        out
    }

    /// A copy without exactly these keys (their sub-keys stay).
    pub(crate) fn without_exact(&self, keys: &[&str]) -> Props {
        let mut out = self.clone();
        out.map.retain(|k, _| !keys.contains(&k.as_str()));
        out
    }

    /// Deserializes into a typed config (see [`crate::de`] for the rules).
    ///
    /// # Errors
    ///
    /// `Err` carries the error(s) found plus every warning; `Ok` carries warnings (unknown keys).
    pub fn deserialize<T: serde::de::DeserializeOwned>(
        &self,
    ) -> Result<(T, Vec<Diagnostic>), Vec<Diagnostic>> {
        crate::de::from_props(self)
    }

    fn locate(&self, d: Diagnostic, key: &str) -> Diagnostic {
        let line = self.line(key).or_else(|| self.anchor_line());
        let d = d.at_opt_line(line).with_key(self.full_key(key));
        if self.component.is_empty() {
            d
        } else {
            d.with_component(self.component.clone())
        }
    }

    /// An error at `key` of this component (line of the key, else the component's first line).
    pub fn error(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.locate(Diagnostic::error(message), key)
    }

    /// A warning at `key` of this component (line of the key, else the component's first line).
    pub fn warning(&self, key: &str, message: impl Into<String>) -> Diagnostic {
        self.locate(Diagnostic::warning(message), key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> Props {
        let mut p = Props::new("a1.sources.r1.", "source r1");
        p.insert("type", "netcat", 3);
        p.insert("port", "80", 5);
        p.insert("selector.type", "multiplexing", 7);
        p.insert("selector.mapping.CA", "c1", 8);
        p.insert("selectorx", "y", 9);
        p
    }

    #[test]
    fn basics() {
        let p = sample();
        assert_eq!(p.get("port"), Some("80"));
        assert_eq!(p.line("port"), Some(5));
        assert_eq!(p.first_line(), Some(3));
        assert_eq!(p.full_key("port"), "a1.sources.r1.port");
        assert_eq!(p.component(), "source r1");
        assert!(!p.is_empty());
        assert_eq!(p.iter().count(), 5);
        assert!(p.has_prefix("selector"));
        assert!(!p.has_prefix("sel"));
    }

    #[test]
    fn sub_and_without() {
        let p = sample();
        let s = p.sub("selector", "selector of source r1");
        assert_eq!(
            s.iter().map(|(k, _, _)| k).collect::<Vec<_>>(),
            ["mapping.CA", "type"]
        );
        assert_eq!(s.full_key("type"), "a1.sources.r1.selector.type");
        assert_eq!(s.component(), "selector of source r1");
        let w = p.without(&["selector", "type"]);
        assert_eq!(
            w.iter().map(|(k, _, _)| k).collect::<Vec<_>>(),
            ["port", "selectorx"]
        );
        let empty = p.sub("nothing", "x");
        assert!(empty.is_empty());
        assert_eq!(empty.first_line(), None);
        assert_eq!(empty.error("k", "m").line, Some(3));
    }

    #[test]
    fn located_diagnostics() {
        let p = sample();
        let e = p.error("port", "bad");
        assert_eq!(e.line, Some(5));
        assert_eq!(e.key.as_deref(), Some("a1.sources.r1.port"));
        assert_eq!(e.component.as_deref(), Some("source r1"));
        assert!(e.is_error());
        let w = p.warning("missing", "hm");
        assert_eq!(w.line, Some(3));
        assert!(!w.is_error());
    }
}
