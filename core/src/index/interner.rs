//! [`Interner`]: strings of one dimension (symbols, patterns, event types)
//! as dense `u32` ids, reference-counted so that values nobody subscribes
//! to any more are forgotten.

use rustc_hash::FxHashMap;

/// Dense id of an interned string.
pub(crate) type Atom = u32;

#[derive(Debug, Default)]
pub(crate) struct Interner {
    ids: FxHashMap<Box<str>, Atom>,
    /// Per id: the string and how many subscriptions use it.
    entries: Vec<Option<(Box<str>, u32)>>,
    free: Vec<Atom>,
}

impl Interner {
    /// The id of `s`, adding a reference.
    pub(crate) fn acquire(&mut self, s: &str) -> Atom {
        if let Some(&id) = self.ids.get(s) {
            if let Some((_, refs)) = &mut self.entries[id as usize] {
                *refs += 1;
            }
            return id;
        }
        let id = self.free.pop().unwrap_or(self.entries.len() as Atom);
        if id as usize == self.entries.len() {
            self.entries.push(None);
        }
        self.entries[id as usize] = Some((s.into(), 1));
        self.ids.insert(s.into(), id);
        id
    }

    /// Drops a reference to `id`; returns true when it was the last one.
    pub(crate) fn release(&mut self, id: Atom) -> bool {
        let Some(Some((name, refs))) = self.entries.get_mut(id as usize) else {
            return false;
        };
        *refs -= 1;
        if *refs > 0 {
            return false;
        }
        self.ids.remove(&**name);
        self.entries[id as usize] = None;
        self.free.push(id);
        true
    }

    /// The id of `s` if some subscription uses it.
    pub(crate) fn get(&self, s: &str) -> Option<Atom> {
        self.ids.get(s).copied()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_are_shared_counted_and_reused() {
        let mut i = Interner::default();
        let a = i.acquire("AAPL");
        assert_eq!(i.acquire("AAPL"), a);
        let m = i.acquire("MSFT");
        assert!(!i.release(a));
        assert!(i.release(a));
        assert_eq!(i.get("AAPL"), None);
        assert_eq!(i.get("MSFT"), Some(m));
        assert_eq!(i.acquire("NVDA"), a, "freed ids are reused");
        assert_eq!(i.entries.len(), 2);
    }
}
