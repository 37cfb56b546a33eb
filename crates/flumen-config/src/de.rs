//! A serde `Deserializer` over a [`Props`] (a flat map of dotted keys to strings).
//!
//! Flume configuration is a flat string map, so this is an envy-style deserializer with three
//! additions that make typos visible:
//!
//! - Struct fields are **full dotted keys** (via `#[serde(rename = "sink.rollInterval")]`). A key
//!   is given to the field with the same name; failing that, to the field with the longest name
//!   `F` such that the key starts with `F.`. That field then sees the rest of those keys as a
//!   nested map or struct (`priority.k1` → field `priority` gets `{k1: ..}`). Because an exact
//!   match wins, `sink.pathManager` and `sink.pathManager.prefix` can both be plain fields.
//! - A key that no field claims is a **warning** ("unknown property"), with a did-you-mean hint
//!   against the struct's field names. `type` is exempt: the caller reads it to pick the type.
//!   Unknown keys are found from the `fields` list that serde passes to `deserialize_struct`,
//!   which is why `serde_ignored` is not needed.
//! - Every error is a located [`Diagnostic`]: line of the key, full key, component label.
//!
//! Scalars are parsed from strings (numbers and bools after trimming, strings as-is), unit
//! enums match case-insensitively (Flume upper-cases its aliases), and a sequence is the value
//! split on ASCII whitespace (Flume's lists, e.g. `dataDirs`, `channels`).
//!
//! Serde's derived visitors stop at the first error of a struct, so at most one error per
//! struct is reported; unknown-key warnings are computed up front and are always all reported.
//!
//! Key sets shared by several components (the TLS keys of every network source) are a struct of
//! their own, included with a field renamed [`SAME_KEYS`] (`#[serde(rename = "*")]`): it is
//! deserialized from the keys the other fields do not claim, at the same level, and warns
//! about the ones it does not claim either. At most one such field per struct.
//!
//! Limitation: map values are scalars keyed by the whole remaining key (`mapping.a.b` → key
//! `a.b`); a map whose values are structs is not supported. Do not use `#[serde(flatten)]`
//! (it buffers values and asks for `deserialize_any`, so numbers arrive as strings): use
//! [`SAME_KEYS`].

use std::cell::RefCell;
use std::fmt;

use serde::de::{
    self, DeserializeSeed, EnumAccess, IntoDeserializer, MapAccess, SeqAccess, VariantAccess,
    Visitor,
};

use crate::diagnostic::{Diagnostic, did_you_mean};
use crate::props::Props;

/// The name (`#[serde(rename = "*")]`) of a field filled from the same keys as its struct:
/// the ones no other field claims. See the module documentation.
pub const SAME_KEYS: &str = "*";

/// The deserializer's error: one diagnostic, located as soon as the location is known.
#[derive(Debug)]
pub struct Error {
    diag: Diagnostic,
    /// False for errors made by serde visitors (`custom`), which know no key; the nearest
    /// enclosing value that knows its key locates them.
    located: bool,
    /// Set by `missing_field`, turned into "missing required property" by the struct level.
    missing: Option<String>,
}

impl Error {
    fn located(diag: Diagnostic) -> Self {
        Error {
            diag,
            located: true,
            missing: None,
        }
    }

    /// Locates an unlocated error at `key` of `props`, keeping its hint.
    fn locate(self, props: &Props, key: &str) -> Self {
        if self.located {
            return self;
        }
        if let Some(field) = &self.missing {
            // A missing field inside a value means a nested struct: report the full sub-key.
            let sub = format!("{key}.{field}");
            return Error::located(props.error(&sub, format!("missing required property `{sub}`")));
        }
        let mut d = props.error(key, self.diag.message);
        d.hint = self.diag.hint;
        Error::located(d)
    }

    /// The diagnostic, located at the component level if nothing better is known.
    fn finish(self, props: &Props) -> Diagnostic {
        if self.located {
            return self.diag;
        }
        if let Some(field) = &self.missing {
            return props.error(
                field,
                format!("missing required property `{}`", props.rel_key(field)),
            );
        }
        let mut d = Diagnostic::error(self.diag.message)
            .at_opt_line(props.anchor_line())
            .with_key(props.prefix().trim_end_matches('.'));
        if !props.component().is_empty() {
            d = d.with_component(props.component());
        }
        d.hint = self.diag.hint;
        d
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.diag.fmt(f)
    }
}

impl std::error::Error for Error {}

impl de::Error for Error {
    fn custom<T: fmt::Display>(msg: T) -> Self {
        Error {
            diag: Diagnostic::error(msg.to_string()),
            located: false,
            missing: None,
        }
    }

    fn missing_field(field: &'static str) -> Self {
        Error {
            diag: Diagnostic::error(format!("missing required property `{field}`")),
            located: false,
            missing: Some(field.to_string()),
        }
    }
}

/// Runs the deserializer; used by [`Props::deserialize`].
pub(crate) fn from_props<T: de::DeserializeOwned>(
    props: &Props,
) -> Result<(T, Vec<Diagnostic>), Vec<Diagnostic>> {
    let warnings = RefCell::new(Vec::new());
    let result = T::deserialize(PropsDe {
        props,
        warnings: &warnings,
        top: true,
        outer: &[],
    });
    let mut diags = warnings.into_inner();
    match result {
        Ok(v) => Ok((v, diags)),
        Err(e) => {
            diags.push(e.finish(props));
            Err(diags)
        }
    }
}

/// Deserializer over a whole set of keys (a component, or the keys under a field's prefix).
struct PropsDe<'a> {
    props: &'a Props,
    warnings: &'a RefCell<Vec<Diagnostic>>,
    /// Only the component's own struct ignores `type` silently; a nested struct has no reason to.
    top: bool,
    /// Field names of the enclosing struct when this is its [`SAME_KEYS`] field: a typo of
    /// one of those keys ends up here, and the did-you-mean hint should still find it.
    outer: &'static [&'static str],
}

/// What a struct field receives.
enum FieldValue {
    /// The exact key exists: (relative key, value).
    Scalar(String, String),
    /// Only keys under `field.` exist.
    Nested(Props),
    /// The [`SAME_KEYS`] field: the keys no other field claimed, at the same level.
    Same(Props),
}

impl PropsDe<'_> {
    fn not_a_value(&self, what: &str) -> Error {
        let key = self.props.prefix().trim_end_matches('.').to_string();
        let mut d = Diagnostic::error(format!(
            "expected a single value for `{key}`, found only sub-properties ({what})"
        ))
        .at_opt_line(self.props.anchor_line())
        .with_key(key);
        if !self.props.component().is_empty() {
            d = d.with_component(self.props.component());
        }
        Error::located(d)
    }

    /// Assigns every key to a field (exact match, else longest `field.` prefix), warning about
    /// the keys no field claims.
    fn assign(&self, fields: &'static [&'static str]) -> Vec<(&'static str, FieldValue)> {
        let mut claimed_prefix: Vec<&'static str> = Vec::new();
        let same = fields.contains(&SAME_KEYS);
        // Keys some field (or `type`) claims: the rest goes to the `SAME_KEYS` field.
        let mut claimed: Vec<&str> = Vec::new();
        for (key, _, _) in self.props.iter() {
            if fields.contains(&key) {
                claimed.push(key);
                continue;
            }
            let owner = fields
                .iter()
                .filter(|f| {
                    key.len() > f.len() && key.starts_with(**f) && key[f.len()..].starts_with('.')
                })
                .max_by_key(|f| f.len());
            match owner {
                Some(f) => {
                    claimed.push(key);
                    if !claimed_prefix.contains(f) {
                        claimed_prefix.push(f);
                    }
                }
                None if self.top && key == "type" => claimed.push(key),
                // Left for the `SAME_KEYS` field, which warns about what it does not claim.
                None if same => {}
                None => {
                    let mut w = self.props.warning(
                        key,
                        format!("unknown property `{}`", self.props.rel_key(key)),
                    );
                    let candidates = fields.iter().chain(self.outer).copied();
                    if let Some(h) = did_you_mean(key, candidates.filter(|f| *f != SAME_KEYS)) {
                        w = w.with_hint(h);
                    }
                    self.warnings.borrow_mut().push(w);
                }
            }
        }
        let mut out = Vec::new();
        for f in fields {
            if let Some(v) = self.props.get(f) {
                out.push((*f, FieldValue::Scalar((*f).to_string(), v.to_string())));
            } else if claimed_prefix.contains(f) {
                // `sub` keeps keys claimed by a longer field too; drop those so that
                // `a` does not also see `a.b.*` when `a.b` is a field of its own.
                let mut sub = self.props.sub(f, self.props.component());
                let longer: Vec<&str> = fields
                    .iter()
                    .filter(|g| {
                        g.len() > f.len() && g.starts_with(*f) && g[f.len()..].starts_with('.')
                    })
                    .map(|g| &g[f.len() + 1..])
                    .collect();
                if !longer.is_empty() {
                    sub = sub.without(&longer);
                }
                if !sub.is_empty() {
                    out.push((*f, FieldValue::Nested(sub)));
                }
            }
        }
        if same {
            let rest = self.props.without_exact(&claimed);
            if !rest.is_empty() {
                out.push((SAME_KEYS, FieldValue::Same(rest)));
            }
        }
        out
    }
}

struct StructAccess<'a> {
    entries: std::vec::IntoIter<(&'static str, FieldValue)>,
    pending: Option<FieldValue>,
    props: &'a Props,
    warnings: &'a RefCell<Vec<Diagnostic>>,
    /// The struct's field names (hints for its [`SAME_KEYS`] field).
    fields: &'static [&'static str],
}

impl<'de> MapAccess<'de> for StructAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((name, value)) => {
                self.pending = Some(value);
                let de: de::value::StrDeserializer<'_, Error> = name.into_deserializer();
                seed.deserialize(de).map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.pending.take() {
            Some(FieldValue::Scalar(key, value)) => seed
                .deserialize(StrDe {
                    key: &key,
                    value,
                    props: self.props,
                })
                .map_err(|e| e.locate(self.props, &key)),
            Some(FieldValue::Nested(sub)) => {
                let field = sub.prefix()[self.props.prefix().len()..]
                    .trim_end_matches('.')
                    .to_string();
                seed.deserialize(PropsDe {
                    props: &sub,
                    warnings: self.warnings,
                    top: false,
                    outer: &[],
                })
                .map_err(|e| e.locate(self.props, &field))
            }
            // Same prefix as this struct: the inner struct locates its own errors.
            Some(FieldValue::Same(rest)) => seed.deserialize(PropsDe {
                props: &rest,
                warnings: self.warnings,
                top: false,
                outer: self.fields,
            }),
            None => Err(de::Error::custom("value requested before key")),
        }
    }
}

/// Map over every key of a set: whole relative key → scalar value.
struct FlatMapAccess<'a> {
    entries: std::vec::IntoIter<(String, String)>,
    pending: Option<(String, String)>,
    props: &'a Props,
}

impl<'de> MapAccess<'de> for FlatMapAccess<'_> {
    type Error = Error;

    fn next_key_seed<K: DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            None => Ok(None),
            Some((k, v)) => {
                let r = seed.deserialize(StrDe {
                    key: &k,
                    value: k.clone(),
                    props: self.props,
                });
                let r = r.map_err(|e| e.locate(self.props, &k));
                self.pending = Some((k, v));
                r.map(Some)
            }
        }
    }

    fn next_value_seed<V: DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.pending.take() {
            Some((k, v)) => seed
                .deserialize(StrDe {
                    key: &k,
                    value: v,
                    props: self.props,
                })
                .map_err(|e| e.locate(self.props, &k)),
            None => Err(de::Error::custom("value requested before key")),
        }
    }
}

impl<'de> de::Deserializer<'de> for PropsDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let entries = self.assign(fields);
        let props = self.props;
        visitor
            .visit_map(StructAccess {
                entries: entries.into_iter(),
                pending: None,
                props,
                warnings: self.warnings,
                fields,
            })
            .map_err(|e| Error::located(e.finish(props)))
    }

    fn deserialize_map<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let entries: Vec<(String, String)> = self
            .props
            .iter()
            .map(|(k, v, _)| (k.to_string(), v.to_string()))
            .collect();
        let props = self.props;
        visitor
            .visit_map(FlatMapAccess {
                entries: entries.into_iter(),
                pending: None,
                props,
            })
            .map_err(|e| Error::located(e.finish(props)))
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_bool<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a boolean"))
    }
    fn deserialize_i8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an integer"))
    }
    fn deserialize_i16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an integer"))
    }
    fn deserialize_i32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an integer"))
    }
    fn deserialize_i64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an integer"))
    }
    fn deserialize_i128<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an integer"))
    }
    fn deserialize_u8<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an unsigned integer"))
    }
    fn deserialize_u16<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an unsigned integer"))
    }
    fn deserialize_u32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an unsigned integer"))
    }
    fn deserialize_u64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an unsigned integer"))
    }
    fn deserialize_u128<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected an unsigned integer"))
    }
    fn deserialize_f32<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a number"))
    }
    fn deserialize_f64<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a number"))
    }
    fn deserialize_char<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a character"))
    }
    fn deserialize_str<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a string"))
    }
    fn deserialize_string<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a string"))
    }
    fn deserialize_bytes<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a string"))
    }
    fn deserialize_byte_buf<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a string"))
    }
    fn deserialize_seq<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a whitespace-separated list"))
    }
    fn deserialize_tuple<V: Visitor<'de>>(self, _len: usize, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a whitespace-separated list"))
    }
    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        _v: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a whitespace-separated list"))
    }
    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        _v: V,
    ) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected one of the allowed values"))
    }
    fn deserialize_identifier<V: Visitor<'de>>(self, _v: V) -> Result<V::Value, Error> {
        Err(self.not_a_value("expected a name"))
    }
}

/// Deserializer for one string value at `key` of `props`.
struct StrDe<'a> {
    key: &'a str,
    value: String,
    props: &'a Props,
}

impl StrDe<'_> {
    fn err(&self, message: String) -> Error {
        Error::located(self.props.error(self.key, message))
    }

    fn invalid_number(
        &self,
        expected: &str,
        e: Option<&std::num::ParseIntError>,
        ty: &str,
    ) -> Error {
        use std::num::IntErrorKind;
        let what = match e.map(|e| e.kind()) {
            Some(IntErrorKind::PosOverflow | IntErrorKind::NegOverflow) => {
                format!("out of range for {ty}")
            }
            _ => expected.to_string(),
        };
        self.err(format!(
            "invalid number `{}` for `{}`: {what}",
            self.value,
            self.props.rel_key(self.key)
        ))
    }
}

macro_rules! int_method {
    ($method:ident, $visit:ident, $ty:ty, $expected:expr) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.trim().parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(e) => Err(self.invalid_number($expected, Some(&e), stringify!($ty))),
            }
        }
    };
}

macro_rules! float_method {
    ($method:ident, $visit:ident, $ty:ty) => {
        fn $method<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
            match self.value.trim().parse::<$ty>() {
                Ok(n) => visitor.$visit(n),
                Err(_) => Err(self.invalid_number("expected a number", None, stringify!($ty))),
            }
        }
    };
}

const UNSIGNED: &str = "expected an unsigned integer";
const SIGNED: &str = "expected an integer";

impl<'de> de::Deserializer<'de> for StrDe<'_> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.value)
    }

    fn deserialize_bool<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let t = self.value.trim();
        if t.eq_ignore_ascii_case("true") {
            visitor.visit_bool(true)
        } else if t.eq_ignore_ascii_case("false") {
            visitor.visit_bool(false)
        } else {
            let e = self.err(format!(
                "invalid boolean `{}` for `{}`: expected `true` or `false`",
                self.value,
                self.props.rel_key(self.key)
            ));
            Err(Error::located(e.diag.with_hint(
                "Flume would silently read anything but `true` as false; flumen refuses it",
            )))
        }
    }

    int_method!(deserialize_i8, visit_i8, i8, SIGNED);
    int_method!(deserialize_i16, visit_i16, i16, SIGNED);
    int_method!(deserialize_i32, visit_i32, i32, SIGNED);
    int_method!(deserialize_i64, visit_i64, i64, SIGNED);
    int_method!(deserialize_i128, visit_i128, i128, SIGNED);
    int_method!(deserialize_u8, visit_u8, u8, UNSIGNED);
    int_method!(deserialize_u16, visit_u16, u16, UNSIGNED);
    int_method!(deserialize_u32, visit_u32, u32, UNSIGNED);
    int_method!(deserialize_u64, visit_u64, u64, UNSIGNED);
    int_method!(deserialize_u128, visit_u128, u128, UNSIGNED);
    float_method!(deserialize_f32, visit_f32, f32);
    float_method!(deserialize_f64, visit_f64, f64);

    fn deserialize_char<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let single = |s: &str| {
            let mut it = s.chars();
            match (it.next(), it.next()) {
                (Some(c), None) => Some(c),
                _ => None,
            }
        };
        match single(&self.value).or_else(|| single(self.value.trim())) {
            Some(c) => visitor.visit_char(c),
            None => Err(self.err(format!(
                "invalid character `{}` for `{}`: expected exactly one character",
                self.value,
                self.props.rel_key(self.key)
            ))),
        }
    }

    fn deserialize_str<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_str(&self.value)
    }

    fn deserialize_string<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.value)
    }

    fn deserialize_bytes<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_bytes(self.value.as_bytes())
    }

    fn deserialize_byte_buf<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_byte_buf(self.value.into_bytes())
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_some(self)
    }

    fn deserialize_unit<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_unit_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_seq<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        let items: Vec<String> = self
            .value
            .split_ascii_whitespace()
            .map(str::to_string)
            .collect();
        visitor.visit_seq(ListAccess {
            items: items.into_iter(),
            key: self.key,
            props: self.props,
        })
    }

    fn deserialize_tuple<V: Visitor<'de>>(
        self,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_tuple_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _len: usize,
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_seq(visitor)
    }

    fn deserialize_map<V: Visitor<'de>>(self, _visitor: V) -> Result<V::Value, Error> {
        Err(self.err(format!(
            "`{0}` takes sub-properties (`{0}.<name> = ...`), not a value",
            self.props.rel_key(self.key)
        )))
    }

    fn deserialize_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        self.deserialize_map(visitor)
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        let t = self.value.trim();
        if let Some(v) = variants.iter().find(|v| v.eq_ignore_ascii_case(t)) {
            return visitor.visit_enum(UnitVariant((*v).to_string()));
        }
        // Not a declared name: the visitor may still know it (a serde `alias` or an `other`
        // variant), so ask it before giving up.
        let key = self.key;
        let rel = self.props.rel_key(key);
        let value = self.value.clone();
        visitor.visit_enum(UnitVariant(t.to_string())).map_err(|_| {
            let mut d = self.props.error(
                key,
                format!(
                    "invalid value `{value}` for `{rel}`: expected one of {}",
                    variants.join(", ")
                ),
            );
            if let Some(h) = did_you_mean(value.trim(), variants.iter().copied()) {
                d = d.with_hint(h);
            }
            Error::located(d)
        })
    }

    fn deserialize_identifier<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_string(self.value)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        visitor.visit_unit()
    }
}

/// Elements of a whitespace-separated list; each is a scalar at the list's key.
struct ListAccess<'a> {
    items: std::vec::IntoIter<String>,
    key: &'a str,
    props: &'a Props,
}

impl<'de> SeqAccess<'de> for ListAccess<'_> {
    type Error = Error;

    fn next_element_seed<T: DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.items.next() {
            None => Ok(None),
            Some(item) => seed
                .deserialize(StrDe {
                    key: self.key,
                    value: item,
                    props: self.props,
                })
                .map(Some),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.items.len())
    }
}

/// A unit variant chosen by name; variants with data are not expressible in a flat map.
struct UnitVariant(String);

impl<'de> EnumAccess<'de> for UnitVariant {
    type Error = Error;
    type Variant = Self;

    fn variant_seed<V: DeserializeSeed<'de>>(self, seed: V) -> Result<(V::Value, Self), Error> {
        let de: de::value::StrDeserializer<'_, Error> = self.0.as_str().into_deserializer();
        let v = seed.deserialize(de)?;
        Ok((v, self))
    }
}

impl<'de> VariantAccess<'de> for UnitVariant {
    type Error = Error;

    fn unit_variant(self) -> Result<(), Error> {
        Ok(())
    }

    fn newtype_variant_seed<T: DeserializeSeed<'de>>(self, _seed: T) -> Result<T::Value, Error> {
        Err(de::Error::custom(format!(
            "value `{}` needs data, which a property cannot give",
            self.0
        )))
    }

    fn tuple_variant<V: Visitor<'de>>(self, _len: usize, _visitor: V) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "value `{}` needs data, which a property cannot give",
            self.0
        )))
    }

    fn struct_variant<V: Visitor<'de>>(
        self,
        _fields: &'static [&'static str],
        _visitor: V,
    ) -> Result<V::Value, Error> {
        Err(de::Error::custom(format!(
            "value `{}` needs data, which a property cannot give",
            self.0
        )))
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;
    use std::path::PathBuf;

    use serde::Deserialize;

    use super::*;

    fn props(pairs: &[(&str, &str)]) -> Props {
        let mut p = Props::new("a1.sinks.k1.", "sink k1");
        for (i, (k, v)) in pairs.iter().enumerate() {
            p.insert(*k, *v, 10 + i as u32);
        }
        p
    }

    #[derive(Debug, Clone, Copy, PartialEq, Deserialize, Default)]
    #[serde(rename_all = "lowercase")]
    enum PathManagerKind {
        #[default]
        Default,
        #[serde(alias = "ROLL_TIME")]
        RollTime,
    }

    #[derive(Debug, Clone, Deserialize, PartialEq)]
    #[serde(default)]
    struct FileRollSinkConfig {
        #[serde(rename = "sink.directory")]
        directory: Option<PathBuf>,
        #[serde(rename = "sink.rollInterval")]
        roll_interval: u64,
        #[serde(rename = "sink.pathManager")]
        path_manager: PathManagerKind,
        #[serde(rename = "sink.pathManager.prefix")]
        prefix: String,
        #[serde(rename = "sink.batchSize")]
        batch_size: usize,
    }

    impl Default for FileRollSinkConfig {
        fn default() -> Self {
            FileRollSinkConfig {
                directory: None,
                roll_interval: 30,
                path_manager: PathManagerKind::Default,
                prefix: String::new(),
                batch_size: 100,
            }
        }
    }

    #[derive(Debug, Clone, Deserialize, PartialEq)]
    struct FailoverConfig {
        priority: BTreeMap<String, i64>,
        maxpenalty: u64,
    }

    #[test]
    fn file_roll_all_fields() {
        let p = props(&[
            ("type", "file_roll"),
            ("sink.directory", "/tmp/out"),
            ("sink.rollInterval", " 60 "),
            ("sink.pathManager", "ROLLTIME"),
            ("sink.pathManager.prefix", "pre-"),
            ("sink.batchSize", "10"),
        ]);
        let (c, w) = p.deserialize::<FileRollSinkConfig>().unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.directory, Some(PathBuf::from("/tmp/out")));
        assert_eq!(c.roll_interval, 60);
        assert_eq!(c.path_manager, PathManagerKind::RollTime);
        assert_eq!(c.prefix, "pre-");
        assert_eq!(c.batch_size, 10);
    }

    #[test]
    fn prefix_field_without_exact_parent() {
        // `sink.pathManager.prefix` alone must not turn `sink.pathManager` into a nested set.
        let p = props(&[("sink.pathManager.prefix", "x")]);
        let (c, w) = p.deserialize::<FileRollSinkConfig>().unwrap();
        assert!(w.is_empty(), "{w:?}");
        assert_eq!(c.path_manager, PathManagerKind::Default);
        assert_eq!(c.prefix, "x");
    }

    #[test]
    fn defaults_apply() {
        let (c, _) = props(&[]).deserialize::<FileRollSinkConfig>().unwrap();
        assert_eq!(c, FileRollSinkConfig::default());
    }

    #[test]
    fn enum_case_insensitive_alias_and_error() {
        for v in ["rolltime", "RollTime", " ROLLTIME ", "ROLL_TIME"] {
            let (c, _) = props(&[("sink.pathManager", v)])
                .deserialize::<FileRollSinkConfig>()
                .unwrap();
            assert_eq!(c.path_manager, PathManagerKind::RollTime, "{v}");
        }
        let e = props(&[("sink.pathManager", "roltime")])
            .deserialize::<FileRollSinkConfig>()
            .unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(
            e[0].message,
            "invalid value `roltime` for `sink.pathManager`: expected one of default, ROLL_TIME, rolltime"
        );
        assert_eq!(e[0].hint.as_deref(), Some("did you mean `rolltime`?"));
        assert_eq!(e[0].line, Some(10));
        assert_eq!(e[0].key.as_deref(), Some("a1.sinks.k1.sink.pathManager"));
        assert_eq!(e[0].component.as_deref(), Some("sink k1"));
    }

    #[test]
    fn bad_number_with_line() {
        let e = props(&[("type", "x"), ("sink.rollInterval", "80x")])
            .deserialize::<FileRollSinkConfig>()
            .unwrap_err();
        assert_eq!(e.len(), 1);
        assert!(e[0].is_error());
        assert_eq!(
            e[0].message,
            "invalid number `80x` for `sink.rollInterval`: expected an unsigned integer"
        );
        assert_eq!(e[0].line, Some(11));
        assert_eq!(e[0].key.as_deref(), Some("a1.sinks.k1.sink.rollInterval"));
        assert_eq!(e[0].component.as_deref(), Some("sink k1"));
    }

    #[test]
    fn unknown_key_warning_with_hint() {
        let (_, w) = props(&[("type", "x"), ("sink.rollIntervl", "5"), ("zzz", "1")])
            .deserialize::<FileRollSinkConfig>()
            .unwrap();
        assert_eq!(w.len(), 2);
        assert_eq!(w[0].message, "unknown property `sink.rollIntervl`");
        assert_eq!(
            w[0].hint.as_deref(),
            Some("did you mean `sink.rollInterval`?")
        );
        assert_eq!(w[0].line, Some(11));
        assert_eq!(w[0].key.as_deref(), Some("a1.sinks.k1.sink.rollIntervl"));
        assert!(!w[0].is_error());
        assert_eq!(w[1].message, "unknown property `zzz`");
        assert_eq!(w[1].hint, None);
    }

    #[test]
    fn maps_via_prefix_and_missing_required() {
        let mut p = Props::new("a1.sinkgroups.g1.processor.", "sink group g1");
        p.insert("priority.k1", "10", 3);
        p.insert("priority.k2", "-5", 4);
        p.insert("maxpenalty", "1000", 5);
        let (c, w) = p.deserialize::<FailoverConfig>().unwrap();
        assert!(w.is_empty());
        assert_eq!(
            c.priority,
            BTreeMap::from([("k1".into(), 10), ("k2".into(), -5)])
        );
        assert_eq!(c.maxpenalty, 1000);

        let mut p = Props::new("a1.sinkgroups.g1.processor.", "sink group g1");
        p.insert("priority.k1", "10", 3);
        let e = p.deserialize::<FailoverConfig>().unwrap_err();
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].message, "missing required property `maxpenalty`");
        assert_eq!(e[0].line, Some(3));
        assert_eq!(
            e[0].key.as_deref(),
            Some("a1.sinkgroups.g1.processor.maxpenalty")
        );

        let mut p = Props::new("a1.sinkgroups.g1.processor.", "sink group g1");
        p.insert("priority.k1", "ten", 7);
        p.insert("maxpenalty", "1", 8);
        let e = p.deserialize::<FailoverConfig>().unwrap_err();
        assert_eq!(
            e[0].message,
            "invalid number `ten` for `priority.k1`: expected an integer"
        );
        assert_eq!(e[0].line, Some(7));
        assert_eq!(
            e[0].key.as_deref(),
            Some("a1.sinkgroups.g1.processor.priority.k1")
        );
    }

    #[test]
    fn map_given_a_value_is_an_error() {
        let e = props(&[("priority", "5"), ("maxpenalty", "1")])
            .deserialize::<FailoverConfig>()
            .unwrap_err();
        assert_eq!(
            e[0].message,
            "`priority` takes sub-properties (`priority.<name> = ...`), not a value"
        );
        assert_eq!(e[0].line, Some(10));
    }

    #[derive(Debug, Deserialize, PartialEq, Default)]
    #[serde(default)]
    struct Ssl {
        enabled: bool,
        keystore: Option<String>,
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Nested {
        ssl: Ssl,
        #[serde(rename = "kafka.topic")]
        topic: String,
    }

    #[test]
    fn nested_struct_with_unknown_key() {
        let p = props(&[
            ("ssl.enabled", "TRUE"),
            ("ssl.keystor", "/k"),
            ("kafka.topic", "t"),
            ("type", "x"),
        ]);
        let (c, w) = p.deserialize::<Nested>().unwrap();
        assert!(c.ssl.enabled);
        assert_eq!(c.ssl.keystore, None);
        assert_eq!(c.topic, "t");
        assert_eq!(w.len(), 1);
        assert_eq!(w[0].message, "unknown property `ssl.keystor`");
        assert_eq!(w[0].key.as_deref(), Some("a1.sinks.k1.ssl.keystor"));
        assert_eq!(w[0].hint.as_deref(), Some("did you mean `keystore`?"));
        assert_eq!(w[0].line, Some(11));
    }

    #[test]
    fn nested_struct_missing_is_reported_at_parent() {
        let e = props(&[("ssl.enabled", "true")])
            .deserialize::<Nested>()
            .unwrap_err();
        assert_eq!(e[0].message, "missing required property `kafka.topic`");
        assert_eq!(e[0].line, Some(10));
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Scalars {
        a: i8,
        b: i16,
        c: i32,
        d: i64,
        e: u8,
        f: u16,
        g: u32,
        h: u64,
        i: usize,
        j: isize,
        k: f32,
        l: f64,
        m: bool,
        n: bool,
        o: char,
        p: String,
        q: Option<String>,
        r: Option<u16>,
        s: PathBuf,
    }

    #[test]
    fn every_scalar_kind() {
        let p = props(&[
            ("a", "-8"),
            ("b", "-16"),
            ("c", " -32"),
            ("d", "-64 "),
            ("e", "8"),
            ("f", "16"),
            ("g", "32"),
            ("h", "64"),
            ("i", "7"),
            ("j", "-7"),
            ("k", "1.5"),
            ("l", " 2.25 "),
            ("m", "True"),
            ("n", " FALSE "),
            ("o", "x"),
            ("p", " keep spaces "),
            ("s", "/a b"),
        ]);
        let (v, w) = p.deserialize::<Scalars>().unwrap();
        assert!(w.is_empty());
        assert_eq!(
            v,
            Scalars {
                a: -8,
                b: -16,
                c: -32,
                d: -64,
                e: 8,
                f: 16,
                g: 32,
                h: 64,
                i: 7,
                j: -7,
                k: 1.5,
                l: 2.25,
                m: true,
                n: false,
                o: 'x',
                p: " keep spaces ".into(),
                q: None,
                r: None,
                s: PathBuf::from("/a b"),
            }
        );
    }

    #[derive(Debug, Deserialize)]
    #[allow(dead_code)]
    struct One<T> {
        v: T,
    }

    fn one_err<T: de::DeserializeOwned + fmt::Debug>(value: &str) -> Diagnostic {
        let e = props(&[("v", value)]).deserialize::<One<T>>().unwrap_err();
        assert_eq!(e.len(), 1, "{e:?}");
        assert_eq!(e[0].line, Some(10));
        assert_eq!(e[0].key.as_deref(), Some("a1.sinks.k1.v"));
        e.into_iter().next().unwrap()
    }

    #[test]
    fn scalar_errors() {
        assert_eq!(
            one_err::<u16>("70000").message,
            "invalid number `70000` for `v`: out of range for u16"
        );
        assert_eq!(
            one_err::<u32>("-1").message,
            "invalid number `-1` for `v`: expected an unsigned integer"
        );
        assert_eq!(
            one_err::<i32>("1.5").message,
            "invalid number `1.5` for `v`: expected an integer"
        );
        assert_eq!(
            one_err::<i8>("").message,
            "invalid number `` for `v`: expected an integer"
        );
        assert_eq!(
            one_err::<f64>("abc").message,
            "invalid number `abc` for `v`: expected a number"
        );
        let b = one_err::<bool>("yes");
        assert_eq!(
            b.message,
            "invalid boolean `yes` for `v`: expected `true` or `false`"
        );
        assert!(b.hint.unwrap().contains("Flume would silently read"));
        assert_eq!(
            one_err::<char>("ab").message,
            "invalid character `ab` for `v`: expected exactly one character"
        );
        assert_eq!(
            one_err::<Vec<u16>>("1 x").message,
            "invalid number `x` for `v`: expected an unsigned integer"
        );
    }

    #[test]
    fn lists() {
        let (v, _) = props(&[("v", "  c1 c2\tc3 ")])
            .deserialize::<One<Vec<String>>>()
            .unwrap();
        assert_eq!(v.v, ["c1", "c2", "c3"]);
        let (v, _) = props(&[("v", "80 443")])
            .deserialize::<One<Vec<u16>>>()
            .unwrap();
        assert_eq!(v.v, [80, 443]);
        let (v, _) = props(&[("v", "")])
            .deserialize::<One<Vec<String>>>()
            .unwrap();
        assert!(v.v.is_empty());
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Millis(u64);

    fn double<'de, D: serde::Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
        let n = u64::deserialize(d)?;
        n.checked_mul(2)
            .ok_or_else(|| de::Error::custom("too large to double"))
    }

    #[derive(Debug, Deserialize, PartialEq)]
    struct Custom {
        timeout: Millis,
        #[serde(deserialize_with = "double")]
        twice: u64,
    }

    #[test]
    fn newtype_and_deserialize_with() {
        let (v, _) = props(&[("timeout", "250"), ("twice", "21")])
            .deserialize::<Custom>()
            .unwrap();
        assert_eq!(
            v,
            Custom {
                timeout: Millis(250),
                twice: 42
            }
        );
        let e = props(&[("timeout", "1"), ("twice", "18446744073709551615")])
            .deserialize::<Custom>()
            .unwrap_err();
        // A custom error from a visitor is located at its key.
        assert_eq!(e[0].message, "too large to double");
        assert_eq!(e[0].line, Some(11));
        assert_eq!(e[0].key.as_deref(), Some("a1.sinks.k1.twice"));
    }

    #[test]
    fn whole_map_and_type_field() {
        let (m, w) = props(&[("type", "t"), ("x.y", "1")])
            .deserialize::<BTreeMap<String, String>>()
            .unwrap();
        assert!(w.is_empty());
        assert_eq!(m.len(), 2);
        #[derive(Deserialize)]
        struct WithType {
            #[serde(rename = "type")]
            kind: String,
        }
        let (t, _) = props(&[("type", " memory")])
            .deserialize::<WithType>()
            .unwrap();
        assert_eq!(t.kind, " memory");
    }

    #[test]
    fn scalar_field_given_sub_keys_is_an_error() {
        let e = props(&[("v.x", "1")])
            .deserialize::<One<u32>>()
            .unwrap_err();
        assert_eq!(
            e[0].message,
            "expected a single value for `a1.sinks.k1.v`, found only sub-properties (expected an unsigned integer)"
        );
        assert_eq!(e[0].line, Some(10));
    }

    #[test]
    fn unknown_warnings_survive_an_error() {
        let e = props(&[("sink.rollIntervl", "5"), ("sink.batchSize", "x")])
            .deserialize::<FileRollSinkConfig>()
            .unwrap_err();
        assert_eq!(e.len(), 2);
        assert!(!e[0].is_error());
        assert!(e[1].is_error());
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct Shared {
        ssl: bool,
        keystore: Option<String>,
        #[serde(rename = "include-protocols")]
        include: Vec<String>,
    }

    #[derive(Debug, Default, Deserialize, PartialEq)]
    #[serde(default)]
    struct WithShared {
        port: Option<u16>,
        #[serde(rename = "*")]
        tls: Shared,
    }

    #[test]
    fn same_keys_field_takes_the_unclaimed_keys_and_warns_about_the_rest() {
        let p = props(&[
            ("type", "x"),
            ("port", "4141"),
            ("ssl", "true"),
            ("keystore", "/k.pem"),
            ("include-protocols", "TLSv1.2 TLSv1.3"),
            ("keystroe", "typo"),
        ]);
        let (c, warnings) = p.deserialize::<WithShared>().expect("valid");
        assert_eq!(c.port, Some(4141));
        assert!(c.tls.ssl, "bools are parsed as in any struct");
        assert_eq!(c.tls.keystore.as_deref(), Some("/k.pem"));
        assert_eq!(c.tls.include, ["TLSv1.2", "TLSv1.3"]);
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(warnings[0].message.contains("unknown property `keystroe`"));
        assert_eq!(warnings[0].line, Some(15));
        assert!(
            format!("{}", warnings[0]).contains("`keystore`"),
            "{}",
            warnings[0]
        );

        // A typo of the outer struct's key is hinted from the outer fields too.
        let (_, warnings) = props(&[("prot", "1")])
            .deserialize::<WithShared>()
            .expect("valid");
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            format!("{}", warnings[0]).contains("`port`"),
            "{}",
            warnings[0]
        );

        let (c, warnings) = props(&[("port", "1")])
            .deserialize::<WithShared>()
            .expect("valid");
        assert_eq!(c.tls, Shared::default());
        assert!(warnings.is_empty());

        let errors = props(&[("ssl", "maybe")])
            .deserialize::<WithShared>()
            .unwrap_err();
        assert!(
            errors.iter().any(|d| d.is_error()
                && d.key.as_deref() == Some("a1.sinks.k1.ssl")
                && d.line == Some(10)),
            "{errors:?}"
        );
    }
}
