//! [`Builder`]: the checks of a [`SchemaDecl`] and what is derived from
//! it (field table, filter keys, anchor order).

use std::sync::Arc;

use super::decl::{DimensionDecl, KindDecl, SchemaDecl, SchemaError};
use super::dimension::{DimId, DimKind, Dimension, FilterKey};
use super::{
    Entitlement, FieldRole, PriorityRule, Schema, EVENT_TYPE, MAX_CHOICES, MAX_DIMENSIONS,
};

/// A channel and its event type.
type Pair = (Box<str>, Box<str>);
/// An event type and the dimensions its events must carry.
type Requirement = (Box<str>, Vec<DimId>);

impl SchemaDecl {
    /// Checks the declaration and builds the schema.
    pub fn build(&self) -> Result<Arc<Schema>, SchemaError> {
        Builder::new(self).run().map(Arc::new)
    }
}

/// The checks and derivations of [`SchemaDecl::build`].
pub(super) struct Builder<'a> {
    decl: &'a SchemaDecl,
    dims: Vec<Dimension>,
    fields: Vec<(Box<str>, FieldRole)>,
    filter_keys: Vec<(Box<str>, FilterKey)>,
}

impl<'a> Builder<'a> {
    pub(super) fn new(decl: &'a SchemaDecl) -> Self {
        Self {
            decl,
            dims: Vec::new(),
            fields: Vec::new(),
            filter_keys: vec![("min_priority".into(), FilterKey::MinPriority)],
        }
    }

    fn fail<T>(&self, message: impl Into<String>) -> Result<T, SchemaError> {
        Err(SchemaError {
            schema: self.decl.name.clone(),
            message: message.into(),
        })
    }

    pub(super) fn run(mut self) -> Result<Schema, SchemaError> {
        let event_type = DimensionDecl::text(EVENT_TYPE).filter_key("event_types");
        self.add_dimension(&event_type)?;
        for dim in &self.decl.dimensions {
            self.add_dimension(dim)?;
        }
        if self.dims.len() > super::MAX_DIMENSIONS {
            return self.fail(format!("more than {MAX_DIMENSIONS} dimensions"));
        }
        for (field, role) in [
            (&self.decl.event_id_field, FieldRole::EventId),
            (&self.decl.user_field, FieldRole::UserId),
            (&self.decl.priority_field, FieldRole::Priority),
        ] {
            self.add_field(field, role)?;
        }
        let schema = Schema {
            name: self.decl.name.as_str().into(),
            anchors: anchors(&self.dims),
            channels: self.channels()?,
            default_event_type: self.decl.default_event_type.as_str().into(),
            required: self.required()?,
            priority: self.priority()?,
            entitlement: self.entitlement()?,
            conflation: self
                .decl
                .conflate
                .iter()
                .map(|name| self.dim_named(name))
                .collect::<Result<_, _>>()?,
            dims: self.dims,
            fields: self.fields,
            filter_keys: self.filter_keys,
        };
        Ok(schema)
    }

    fn add_dimension(&mut self, d: &DimensionDecl) -> Result<(), SchemaError> {
        if d.name.is_empty() || self.dims.iter().any(|x| *x.name == *d.name) {
            return self.fail(format!("dimension names must be unique: `{}`", d.name));
        }
        let id = DimId::at(self.dims.len());
        let kind = self.kind(d)?;
        let fields: Vec<Box<str>> = if d.fields.is_empty() {
            vec![d.name.as_str().into()]
        } else {
            d.fields.iter().map(|f| f.as_str().into()).collect()
        };
        for (rank, field) in fields.iter().enumerate() {
            self.add_field(field, FieldRole::Dim(id, rank as u8))?;
        }
        match kind {
            DimKind::Number { .. } => {
                let min = d.filter_min.clone().unwrap_or(format!("min_{}", d.name));
                let max = d.filter_max.clone().unwrap_or(format!("max_{}", d.name));
                self.add_filter_key(&min, FilterKey::AtLeast(id))?;
                self.add_filter_key(&max, FilterKey::AtMost(id))?;
            }
            _ => {
                let key = d.filter.clone().unwrap_or(format!("{}s", d.name));
                self.add_filter_key(&key, FilterKey::AnyOf(id))?;
            }
        }
        self.dims.push(Dimension::new(&d.name, kind, fields));
        Ok(())
    }

    fn kind(&self, d: &DimensionDecl) -> Result<DimKind, SchemaError> {
        Ok(match d.kind {
            KindDecl::Text => DimKind::Text {
                case: d.case,
                max_chars: match d.max_chars {
                    Some(0) => return self.fail(format!("`{}`: max_chars must be > 0", d.name)),
                    Some(n) => n,
                    None => 128,
                },
            },
            KindDecl::Choice => {
                let mut seen: Vec<&str> = Vec::new();
                for v in &d.values {
                    if v.is_empty() || seen.contains(&v.as_str()) {
                        return self.fail(format!("`{}`: choices must be unique", d.name));
                    }
                    seen.push(v);
                }
                if seen.is_empty() || seen.len() > MAX_CHOICES {
                    return self.fail(format!("`{}`: 1 to {MAX_CHOICES} values", d.name));
                }
                DimKind::Choice {
                    values: d.values.iter().map(|v| v.as_str().into()).collect(),
                }
            }
            KindDecl::Number => match (d.min, d.max) {
                (Some(min), Some(max)) if min.is_finite() && max.is_finite() && min <= max => {
                    DimKind::Number { min, max }
                }
                _ => return self.fail(format!("`{}`: needs finite min <= max", d.name)),
            },
        })
    }

    fn add_field(&mut self, field: &str, role: FieldRole) -> Result<(), SchemaError> {
        if field.is_empty() || self.fields.iter().any(|(f, _)| &**f == field) {
            return self.fail(format!("body field `{field}` read twice"));
        }
        self.fields.push((field.into(), role));
        Ok(())
    }

    fn add_filter_key(&mut self, key: &str, role: FilterKey) -> Result<(), SchemaError> {
        if key.is_empty() || self.filter_keys.iter().any(|(k, _)| &**k == key) {
            return self.fail(format!("filter key `{key}` declared twice"));
        }
        self.filter_keys.push((key.into(), role));
        Ok(())
    }

    fn dim_named(&self, name: &str) -> Result<DimId, SchemaError> {
        match self.dims.iter().position(|d| &*d.name == name) {
            Some(i) => Ok(DimId::at(i)),
            None => self.fail(format!("no dimension `{name}`")),
        }
    }

    fn channels(&self) -> Result<Vec<Pair>, SchemaError> {
        let mut out: Vec<Pair> = Vec::new();
        for c in &self.decl.channels {
            if out.iter().any(|(name, _)| **name == *c.channel) {
                return self.fail(format!("channel `{}` mapped twice", c.channel));
            }
            out.push((c.channel.as_str().into(), c.event_type.as_str().into()));
        }
        Ok(out)
    }

    fn required(&self) -> Result<Vec<Requirement>, SchemaError> {
        let mut out: Vec<Requirement> = Vec::new();
        for (i, d) in self.decl.dimensions.iter().enumerate() {
            let id = DimId::at(i + 1);
            for t in &d.required_for {
                match out.iter_mut().find(|(x, _)| **x == **t) {
                    Some((_, dims)) => dims.push(id),
                    None => out.push((t.as_str().into(), vec![id])),
                }
            }
        }
        Ok(out)
    }

    fn priority(&self) -> Result<PriorityRule, SchemaError> {
        let Some(p) = &self.decl.priority else {
            return Ok(PriorityRule { from: None });
        };
        let dim = self.dim_named(&p.from)?;
        if !matches!(self.dims[dim.index()].kind, DimKind::Number { .. }) {
            return self.fail(format!("priority from `{}`: not a number", p.from));
        }
        if !(p.medium <= p.high && p.high <= p.critical) {
            return self.fail("priority floors must be medium <= high <= critical");
        }
        Ok(PriorityRule {
            from: Some((dim, [p.medium, p.high, p.critical])),
        })
    }

    fn entitlement(&self) -> Result<Option<Entitlement>, SchemaError> {
        let Some(e) = &self.decl.entitlement else {
            return Ok(None);
        };
        let dim = self.dim_named(&e.dimension)?;
        if !matches!(self.dims[dim.index()].kind, DimKind::Choice { .. }) || e.claim.is_empty() {
            return self.fail(format!("entitlement `{}`: not a choice", e.dimension));
        }
        Ok(Some(Entitlement {
            dim,
            claim: e.claim.as_str().into(),
        }))
    }
}

/// Text dimensions in declaration order, then choices with more values
/// first, then the event type: the order in which a subscription picks
/// the dimension it is posted under.
fn anchors(dims: &[Dimension]) -> Vec<DimId> {
    let mut texts = Vec::new();
    let mut choices = Vec::new();
    for (i, d) in dims.iter().enumerate().skip(1) {
        match &d.kind {
            DimKind::Text { .. } => texts.push(DimId::at(i)),
            DimKind::Choice { values } => choices.push((values.len(), DimId::at(i))),
            DimKind::Number { .. } => {}
        }
    }
    choices.sort_by_key(|(n, id)| (std::cmp::Reverse(*n), *id));
    texts.extend(choices.into_iter().map(|(_, id)| id));
    texts.push(DimId::EVENT_TYPE);
    texts
}

#[cfg(test)]
mod tests {
    use super::super::{DimensionDecl, SchemaDecl};
    use super::*;

    #[test]
    fn declarations_that_cannot_work_are_refused() {
        let dup = SchemaDecl::new("x")
            .dimension(DimensionDecl::text("a"))
            .dimension(DimensionDecl::text("a"));
        assert!(dup.build().is_err());
        let key_clash = SchemaDecl::new("x")
            .dimension(DimensionDecl::text("a").filter_key("k"))
            .dimension(DimensionDecl::text("b").filter_key("k"));
        assert!(key_clash.build().is_err());
        let bad_range = SchemaDecl::new("x").dimension(DimensionDecl::number("n", 1.0, 0.0));
        assert!(bad_range.build().is_err());
        let empty_choice = SchemaDecl::new("x").dimension(DimensionDecl::choice::<&str>("c", []));
        assert!(empty_choice.build().is_err());
        let prio = SchemaDecl::new("x")
            .dimension(DimensionDecl::text("a"))
            .priority_from("a", 0.1, 0.2, 0.3);
        assert!(prio.build().is_err());
        let ent = SchemaDecl::new("x")
            .dimension(DimensionDecl::text("a"))
            .entitlement("a", "as");
        assert!(ent.build().is_err());
        let field_twice = SchemaDecl::new("x").dimension(DimensionDecl::text("user_id"));
        assert!(field_twice.build().is_err());
    }

    #[test]
    fn filter_keys_and_anchors_follow_the_declaration() {
        let s = SchemaDecl::new("x")
            .dimension(DimensionDecl::choice("small", ["a", "b"]))
            .dimension(DimensionDecl::text("name"))
            .dimension(DimensionDecl::choice("big", ["a", "b", "c"]))
            .dimension(DimensionDecl::number("n", 0.0, 1.0))
            .build()
            .unwrap();
        let id = |n: &str| s.dim(n).unwrap();
        assert_eq!(
            s.anchors(),
            [id("name"), id("big"), id("small"), id("event_type")]
        );
        assert_eq!(s.filter_key("names"), Some(FilterKey::AnyOf(id("name"))));
        assert_eq!(s.filter_key("min_n"), Some(FilterKey::AtLeast(id("n"))));
        assert_eq!(s.filter_key("max_n"), Some(FilterKey::AtMost(id("n"))));
        assert_eq!(
            s.filter_key("event_types"),
            Some(FilterKey::AnyOf(DimId::EVENT_TYPE))
        );
        assert_eq!(s.filter_key("min_priority"), Some(FilterKey::MinPriority));
        assert_eq!(s.filter_key("ns"), None);
    }
}
