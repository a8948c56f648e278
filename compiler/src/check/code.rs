//! Stable codes of elaboration diagnostics: E02xx names and structure, E03xx
//! types, E04xx probe points and kernel facts.

macro_rules! codes {
    ($($(#[$doc:meta])* $code:ident = $n:literal,)*) => {
        #[derive(Clone, Copy, Debug, PartialEq, Eq)]
        #[repr(u16)]
        pub enum Code {
            $($(#[$doc])* $code = $n,)*
        }

        impl From<Code> for u16 {
            fn from(code: Code) -> u16 {
                code as u16
            }
        }
    };
}

codes! {
    /// A call to a function no script, tapset or built-in defines.
    E0201 = 201,
    /// A function exists, but not with this many arguments.
    E0202 = 202,
    /// An array that no `global` declares.
    E0203 = 203,
    /// A variable used with different numbers of indexes.
    E0204 = 204,
    /// A name declared twice.
    E0205 = 205,
    /// Embedded C: rstap never runs it.
    E0206 = 206,
    /// `foreach` body modifies the array it walks.
    E0207 = 207,
    /// A statement in a place where it cannot run (`next` in a function, ...).
    E0208 = 208,
    /// Warning: a variable read but never assigned.
    E0209 = 209,
    /// Warning: code that has no effect and was removed.
    E0210 = 210,
    /// Nothing left to run.
    E0211 = 211,
    /// An alias that expands into itself.
    E0212 = 212,
    /// A construct that needs what this build cannot give (`@var`, `@perf`, ...).
    E0213 = 213,
    /// An array used without `global` (a warning: rstap declares it).
    E0214 = 214,
    /// Values of two types meet where one type is needed.
    E0301 = 301,
    /// A variable whose type nothing decides.
    E0302 = 302,
    /// Statistics where they cannot be (a local, a printed value, arithmetic).
    E0303 = 303,
    /// A print format that does not match its arguments.
    E0304 = 304,
    /// A histogram outside `print`, `foreach` or `in`.
    E0305 = 305,
    /// A value that a function which returns nothing was asked for.
    E0306 = 306,
    /// A probe point that matches no family or alias.
    E0401 = 401,
    /// A probe point whose pattern matches nothing in this kernel.
    E0402 = 402,
    /// A malformed probe point (bad argument, missing argument).
    E0403 = 403,
    /// A probe point that needs DWARF debug information.
    E0404 = 404,
    /// The kernel could not tell us what we asked.
    E0405 = 405,
    /// A probe family this build does not support.
    E0406 = 406,
    /// A `$target` variable this probe point does not have.
    E0407 = 407,
    /// Kernel-only code (the current task, kernel memory) in a user-context
    /// probe.
    E0408 = 408,
}
