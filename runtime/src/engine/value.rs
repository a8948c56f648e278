//! Script values in the user-space engine: 64-bit integers and byte strings
//! (not necessarily UTF-8), compared and hashed the way keys need.

use std::cmp::Ordering;

#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Value {
    Long(i64),
    Str(Vec<u8>),
}

impl Value {
    pub fn zero(ty: rstap_compiler::mir::Ty) -> Value {
        match ty {
            rstap_compiler::mir::Ty::Long => Value::Long(0),
            rstap_compiler::mir::Ty::Str => Value::Str(Vec::new()),
        }
    }

    /// The integer (a string reads as 0: the checker keeps types apart).
    pub fn long(&self) -> i64 {
        match self {
            Value::Long(n) => *n,
            Value::Str(_) => 0,
        }
    }

    pub fn bytes(&self) -> &[u8] {
        match self {
            Value::Str(s) => s,
            Value::Long(_) => &[],
        }
    }
}

impl PartialOrd for Value {
    fn partial_cmp(&self, other: &Value) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

/// Numbers by value, strings as strcmp orders them; a number sorts before a string.
impl Ord for Value {
    fn cmp(&self, other: &Value) -> Ordering {
        match (self, other) {
            (Value::Long(a), Value::Long(b)) => a.cmp(b),
            (Value::Str(a), Value::Str(b)) => a.cmp(b),
            (Value::Long(_), Value::Str(_)) => Ordering::Less,
            (Value::Str(_), Value::Long(_)) => Ordering::Greater,
        }
    }
}
