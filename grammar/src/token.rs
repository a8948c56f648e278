//! The token vocabulary shared by the lexer, the preprocessor and the parser.

use std::fmt;

macro_rules! vocabulary {
    (keywords { $($kw:ident = $kws:literal,)* } operators { $($op:ident = $ops:literal,)* }) => {
        /// A token. Literal payloads keep their source spelling: numbers are checked
        /// by the parser, strings keep their escapes (stap prints them as written).
        #[derive(Clone, Debug, PartialEq, Eq, Hash)]
        pub enum Tok {
            Ident(String),
            /// `$name`, `$$vars`, `$name$$`: a target (context) variable.
            Target(String),
            /// `@name`: an operator word or a macro use.
            At(String),
            Number(String),
            Str(String),
            Embedded(String),
            /// `$N`, `@N`, `$#`, `@#`: replaced by the preprocessor.
            DollarArg(u32),
            AtArg(u32),
            DollarHash,
            AtHash,
            /// A probe-point component name glued from adjacent tokens (`sys*call`, `**`).
            PointName(String),
            /// `++`/`--` right after an operand: postfix (set by the glue pass).
            PostIncr,
            PostDecr,
            /// `(` right after an identifier: a call (set by the glue pass).
            CallParen,
            /// `$`/`$$` right after a `)` or `]`: pretty printing of a cast (glue pass).
            Pretty(u8),
            /// An invisible statement end: stap ends an expression after a regex literal
            /// or an `in` array when `+`, `-` or `[` follows (glue pass).
            Split,
            $($kw,)*
            $($op,)*
        }

        impl Tok {
            pub fn keyword(s: &str) -> Option<Tok> {
                match s {
                    $($kws => Some(Tok::$kw),)*
                    _ => None,
                }
            }

            pub fn operator(s: &str) -> Option<Tok> {
                match s {
                    $($ops => Some(Tok::$op),)*
                    _ => None,
                }
            }

            /// The source spelling of a keyword or operator.
            pub fn fixed_text(&self) -> Option<&'static str> {
                match self {
                    $(Tok::$kw => Some($kws),)*
                    $(Tok::$op => Some($ops),)*
                    _ => None,
                }
            }

            /// Moves out a token's string payload (leaving it empty) and returns the
            /// token; tokens without a payload are copied.
            pub fn take_payload(&mut self) -> Tok {
                match self {
                    Tok::Ident(s) => Tok::Ident(std::mem::take(s)),
                    Tok::Target(s) => Tok::Target(std::mem::take(s)),
                    Tok::At(s) => Tok::At(std::mem::take(s)),
                    Tok::Number(s) => Tok::Number(std::mem::take(s)),
                    Tok::Str(s) => Tok::Str(std::mem::take(s)),
                    Tok::Embedded(s) => Tok::Embedded(std::mem::take(s)),
                    Tok::PointName(s) => Tok::PointName(std::mem::take(s)),
                    other => other.clone(),
                }
            }

            pub fn is_keyword(&self) -> bool {
                matches!(self, $(Tok::$kw)|*)
            }
        }
    };
}

vocabulary! {
    keywords {
        Probe = "probe",
        Global = "global",
        Private = "private",
        Function = "function",
        If = "if",
        Else = "else",
        For = "for",
        Foreach = "foreach",
        In = "in",
        Limit = "limit",
        Return = "return",
        Delete = "delete",
        While = "while",
        Break = "break",
        Continue = "continue",
        Next = "next",
        Try = "try",
        Catch = "catch",
        StringKw = "string",
        LongKw = "long",
    }
    operators {
        PpOpen = "%(",
        PpThen = "%?",
        PpElse = "%:",
        PpClose = "%)",
        Append = "<<<",
        UShr = ">>>",
        ShlAssign = "<<=",
        ShrAssign = ">>=",
        EqEq = "==",
        NotEq = "!=",
        Le = "<=",
        Ge = ">=",
        Match = "=~",
        NotMatch = "!~",
        AddAssign = "+=",
        SubAssign = "-=",
        MulAssign = "*=",
        DivAssign = "/=",
        ModAssign = "%=",
        AndAssign = "&=",
        XorAssign = "^=",
        OrAssign = "|=",
        CatAssign = ".=",
        AndAnd = "&&",
        OrOr = "||",
        Incr = "++",
        Decr = "--",
        Arrow = "->",
        Shl = "<<",
        Shr = ">>",
        Plus = "+",
        Minus = "-",
        Star = "*",
        Slash = "/",
        Percent = "%",
        Assign = "=",
        Lt = "<",
        Gt = ">",
        Bang = "!",
        Tilde = "~",
        Amp = "&",
        Pipe = "|",
        Caret = "^",
        Dot = ".",
        Comma = ",",
        Semi = ";",
        Colon = ":",
        Question = "?",
        LParen = "(",
        RParen = ")",
        LBracket = "[",
        RBracket = "]",
        LBrace = "{",
        RBrace = "}",
    }
}

impl fmt::Display for Tok {
    /// How a token is named in a diagnostic.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Tok::Ident(s) | Tok::PointName(s) => write!(f, "identifier `{s}`"),
            Tok::Target(s) => write!(f, "target variable `{s}`"),
            Tok::At(s) => write!(f, "`{s}`"),
            Tok::Number(s) => write!(f, "number `{s}`"),
            Tok::Str(s) => write!(f, "string \"{s}\""),
            Tok::Embedded(_) => write!(f, "embedded code"),
            Tok::DollarArg(n) => write!(f, "`${n}`"),
            Tok::AtArg(n) => write!(f, "`@{n}`"),
            Tok::DollarHash => write!(f, "`$#`"),
            Tok::AtHash => write!(f, "`@#`"),
            Tok::PostIncr => write!(f, "`++`"),
            Tok::PostDecr => write!(f, "`--`"),
            Tok::CallParen => write!(f, "`(`"),
            Tok::Pretty(n) => write!(f, "`{}`", "$".repeat(usize::from(*n))),
            Tok::Split => write!(f, "the end of the expression"),
            other => {
                let text = other.fixed_text().unwrap_or("?");
                if other.is_keyword() {
                    write!(f, "keyword `{text}`")
                } else {
                    write!(f, "`{text}`")
                }
            }
        }
    }
}
