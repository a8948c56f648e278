//! Type inference as one union-find over type variables: every expression, local,
//! global (value and each key column), parameter and return value has a variable;
//! the body walk states equalities and known types as it goes, and a conflict is
//! reported where it is found, next to the place the other type came from. Nothing
//! is iterated to a fixpoint.

use crate::hir::Type;
use rstap_grammar::Span;

/// A type variable.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Var(u32);

impl Var {
    /// The number an expression keeps to find its variable again.
    pub fn handle(self) -> u32 {
        self.0
    }

    pub fn from_handle(h: u32) -> Var {
        Var(h)
    }
}

/// Two types met where one was needed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mismatch {
    /// The type the use at `span` wanted.
    pub found: Type,
    pub span: Span,
    /// The type already decided, and where it was first decided.
    pub expected: Type,
    pub first: Span,
}

#[derive(Clone, Copy, Debug)]
struct Known {
    ty: Type,
    span: Span,
}

#[derive(Debug, Default)]
pub struct Solver {
    parent: Vec<u32>,
    known: Vec<Option<Known>>,
    /// A class that already produced a mismatch reports no more (no cascades).
    poisoned: Vec<bool>,
}

impl Solver {
    pub fn fresh(&mut self) -> Var {
        let v = u32::try_from(self.parent.len()).unwrap_or(u32::MAX);
        self.parent.push(v);
        self.known.push(None);
        self.poisoned.push(false);
        Var(v)
    }

    /// A variable already known to be `ty`.
    pub fn of(&mut self, ty: Type, span: Span) -> Var {
        let v = self.fresh();
        self.known[v.0 as usize] = Some(Known { ty, span });
        v
    }

    fn root(&mut self, v: Var) -> usize {
        let mut r = v.0 as usize;
        while self.parent[r] as usize != r {
            r = self.parent[r] as usize;
        }
        let mut i = v.0 as usize;
        while self.parent[i] as usize != r {
            let next = self.parent[i] as usize;
            self.parent[i] = r as u32;
            i = next;
        }
        r
    }

    pub fn get(&mut self, v: Var) -> Type {
        let r = self.root(v);
        self.known[r].map_or(Type::Unknown, |k| k.ty)
    }

    /// States that `v` has type `ty`, because of the code at `span`.
    pub fn require(&mut self, v: Var, ty: Type, span: Span) -> Result<(), Mismatch> {
        if ty == Type::Unknown {
            return Ok(());
        }
        let r = self.root(v);
        match self.known[r] {
            None => {
                self.known[r] = Some(Known { ty, span });
                Ok(())
            }
            Some(k) if k.ty == ty => Ok(()),
            Some(k) => self.mismatch(r, ty, span, k),
        }
    }

    /// States that `a` and `b` have the same type.
    pub fn unify(&mut self, a: Var, b: Var) -> Result<(), Mismatch> {
        let (ra, rb) = (self.root(a), self.root(b));
        if ra == rb {
            return Ok(());
        }
        let (ka, kb) = (self.known[ra], self.known[rb]);
        self.parent[rb] = ra as u32;
        self.poisoned[ra] |= self.poisoned[rb];
        match (ka, kb) {
            (None, Some(k)) => {
                self.known[ra] = Some(k);
                Ok(())
            }
            (Some(x), Some(y)) if x.ty != y.ty => {
                // The later-decided side is the one reported as found.
                let (first, later) = if order(x.span, y.span) {
                    (x, y)
                } else {
                    (y, x)
                };
                self.known[ra] = Some(first);
                self.mismatch(ra, later.ty, later.span, first)
            }
            _ => Ok(()),
        }
    }

    fn mismatch(&mut self, root: usize, found: Type, span: Span, k: Known) -> Result<(), Mismatch> {
        if std::mem::replace(&mut self.poisoned[root], true) {
            return Ok(());
        }
        Err(Mismatch {
            found,
            span,
            expected: k.ty,
            first: k.span,
        })
    }
}

/// Whether `a` comes before `b` in the source (by file, then offset).
fn order(a: Span, b: Span) -> bool {
    (a.file, a.start) <= (b.file, b.start)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rstap_grammar::FileId;

    fn at(n: usize) -> Span {
        Span::new(FileId(0), n, n + 1)
    }

    #[test]
    fn unification_carries_a_known_type_to_every_member() {
        let mut s = Solver::default();
        let (a, b, c) = (s.fresh(), s.fresh(), s.fresh());
        s.unify(a, b).expect("fresh variables unify");
        s.unify(b, c).expect("fresh variables unify");
        s.require(c, Type::String, at(2)).expect("first type");
        assert_eq!(s.get(a), Type::String);
        let err = s.require(b, Type::Long, at(4)).expect_err("conflict");
        assert_eq!(err.first, at(2), "the first decision is remembered");
    }

    #[test]
    fn a_conflict_names_both_places_once() {
        let mut s = Solver::default();
        let a = s.fresh();
        s.require(a, Type::Long, at(3)).expect("first type");
        let err = s.require(a, Type::String, at(9)).expect_err("conflict");
        assert_eq!(
            (err.found, err.span, err.expected, err.first),
            (Type::String, at(9), Type::Long, at(3))
        );
        assert!(s.require(a, Type::String, at(12)).is_ok(), "reported once");
    }

    #[test]
    fn unifying_two_decided_classes_reports_the_later_one() {
        let mut s = Solver::default();
        let (a, b) = (s.of(Type::Long, at(5)), s.of(Type::String, at(1)));
        let err = s.unify(a, b).expect_err("conflict");
        assert_eq!((err.found, err.span), (Type::Long, at(5)));
        assert_eq!((err.expected, err.first), (Type::String, at(1)));
    }
}
