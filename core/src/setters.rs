//! `setters!`: `with_*` setters for a config struct's public fields.
//!
//! Config structs are `#[non_exhaustive]`, so that a field can be added
//! without breaking an embedder; outside this crate they are then built
//! from `Default` and changed through their fields or these setters, which
//! take the struct by value and return it, for one chain:
//! `HubConfig::default().with_shards(4).with_await_history(true)`.

/// `setters!(Type { with_a => a: A, with_b => b: B })` adds to `Type` a
/// `with_a(self, a: A) -> Self` per listed field.
macro_rules! setters {
    ($ty:ty { $($setter:ident => $field:ident: $fty:ty),* $(,)? }) => {
        impl $ty {
            $(
                #[doc = concat!(
                    "Sets [`", stringify!($field), "`](Self::", stringify!($field), ")."
                )]
                #[must_use]
                pub fn $setter(mut self, $field: $fty) -> Self {
                    self.$field = $field;
                    self
                }
            )*
        }
    };
}
