//! Globals of the user-space engine: scalars, aggregates, and associative arrays
//! with stap's limits (MAXMAPENTRIES or `global a[N]`, `%` wrap replacing the
//! oldest entry). Arrays keep insertion order, so an unsorted `foreach` walks
//! them in a stable order.

use super::value::Value;
use crate::stats::{Stat, StatSpec};
use rstap_compiler::mir::{self, GlobalKind};
use std::collections::{BTreeMap, HashMap};

/// Why an element could not be stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Overflow(pub String);

/// One array: keys to values, oldest first.
#[derive(Clone, Debug)]
pub struct Array<T> {
    entries: HashMap<Vec<Value>, (u64, T)>,
    order: BTreeMap<u64, Vec<Value>>,
    next: u64,
    limit: usize,
    wrap: bool,
    /// Set by `global a[N]`: stap names the limit in the overflow message.
    sized: bool,
}

impl<T: Clone> Array<T> {
    fn new(limit: usize, wrap: bool, sized: bool) -> Array<T> {
        Array {
            entries: HashMap::new(),
            order: BTreeMap::new(),
            next: 0,
            limit,
            wrap,
            sized,
        }
    }

    pub fn get(&self, keys: &[Value]) -> Option<&T> {
        self.entries.get(keys).map(|(_, v)| v)
    }

    /// The element for `keys`, created with `fresh` when absent.
    pub fn entry(&mut self, keys: &[Value], fresh: impl FnOnce() -> T) -> Result<&mut T, Overflow> {
        if !self.entries.contains_key(keys) {
            if self.entries.len() >= self.limit {
                if !self.wrap {
                    return Err(Overflow(if self.sized {
                        format!("Array overflow, check size limit ({})", self.limit)
                    } else {
                        "Array overflow, check MAXMAPENTRIES".to_string()
                    }));
                }
                if let Some((_, oldest)) = self.order.pop_first() {
                    self.entries.remove(&oldest);
                }
            }
            let seq = self.next;
            self.next += 1;
            self.order.insert(seq, keys.to_vec());
            self.entries.insert(keys.to_vec(), (seq, fresh()));
        }
        match self.entries.get_mut(keys) {
            Some((_, v)) => Ok(v),
            None => Err(Overflow("Array overflow, check MAXMAPENTRIES".into())),
        }
    }

    /// Removes every entry matching `pattern` (`None` matches any key).
    pub fn delete(&mut self, pattern: &[Option<Value>]) {
        let doomed: Vec<Vec<Value>> = self
            .entries
            .keys()
            .filter(|k| matches(k, pattern))
            .cloned()
            .collect();
        for k in doomed {
            if let Some((seq, _)) = self.entries.remove(&k) {
                self.order.remove(&seq);
            }
        }
    }

    pub fn contains(&self, pattern: &[Option<Value>]) -> bool {
        if pattern.iter().all(Option::is_some) {
            let keys: Vec<Value> = pattern.iter().flatten().cloned().collect();
            return self.entries.contains_key(&keys);
        }
        self.entries.keys().any(|k| matches(k, pattern))
    }

    pub fn clear(&mut self) {
        self.entries.clear();
        self.order.clear();
    }

    /// Every entry, oldest first.
    pub fn snapshot(&self) -> Vec<(Vec<Value>, T)> {
        self.order
            .values()
            .filter_map(|k| self.entries.get(k).map(|(_, v)| (k.clone(), v.clone())))
            .collect()
    }
}

/// Whether `keys` match a pattern with `None` wildcards.
pub fn matches(keys: &[Value], pattern: &[Option<Value>]) -> bool {
    keys.len() == pattern.len()
        && keys
            .iter()
            .zip(pattern)
            .all(|(k, p)| p.as_ref().is_none_or(|p| p == k))
}

#[derive(Clone, Debug)]
pub enum Slot {
    Scalar(Value),
    Stats(Stat),
    Array(Array<Value>),
    StatsArray(Array<Stat>),
}

/// Every global of a program.
#[derive(Clone, Debug)]
pub struct Store {
    pub slots: Vec<Slot>,
    /// How each aggregate of a global is created (which histogram it keeps).
    specs: Vec<StatSpec>,
}

impl Store {
    /// Globals at their initial values; `max_entries` is MAXMAPENTRIES.
    pub fn new(globals: &[mir::Global], max_entries: usize) -> Store {
        let mut specs = Vec::with_capacity(globals.len());
        let slots = globals
            .iter()
            .map(|g| {
                let limit = g
                    .size
                    .and_then(|n| usize::try_from(n).ok())
                    .unwrap_or(max_entries);
                let sized = g.size.is_some();
                match &g.kind {
                    GlobalKind::Value(ty) => {
                        specs.push(StatSpec::default());
                        if g.keys.is_empty() {
                            Slot::Scalar(match &g.init {
                                Some(mir::Value::Long(n)) => Value::Long(*n),
                                Some(mir::Value::Str(s)) => Value::Str(s.clone()),
                                None => Value::zero(*ty),
                            })
                        } else {
                            Slot::Array(Array::new(limit, g.wrap, sized))
                        }
                    }
                    GlobalKind::Stats(spec) => {
                        let spec = super::stat_spec(spec);
                        specs.push(spec.clone());
                        if g.keys.is_empty() {
                            Slot::Stats(Stat::new(spec))
                        } else {
                            Slot::StatsArray(Array::new(limit, g.wrap, sized))
                        }
                    }
                }
            })
            .collect();
        Store { slots, specs }
    }

    /// A fresh aggregate for global `g`.
    pub fn new_stat(&self, g: usize) -> Stat {
        Stat::new(self.specs[g].clone())
    }
}
