//! `#[oasis::main]`: turns `async fn main` into an Oasis reactor app.
//!
//! Use it through the `oasis` crate, which re-exports it and documents it.
//!
//! Written against `proc_macro` alone: the attribute only needs to recognise
//! `[attributes] [pub] async fn main() [-> Type] { body }`, and a dependency
//! on `syn` would be compiled into every app build.

#![warn(missing_docs)]

use proc_macro::{Delimiter, Group, Ident, Punct, Spacing, Span, TokenStream, TokenTree};

/// Marks `async fn main` as a reactor app's entry point. See `oasis::main`.
///
/// Expands
///
/// ```text
/// #[oasis::main]
/// async fn main() -> oasis::Result<()> { body }
/// ```
///
/// to
///
/// ```text
/// fn main() {
///     async fn __oasis_main() -> oasis::Result<()> { body }
///     ::oasis::rt::__start_root(__oasis_main());
/// }
///
/// #[unsafe(export_name = "oasis_v1_poll")]
/// pub extern "C" fn __oasis_v1_poll(now_ns: i64) -> i64 { ::oasis::rt::__poll(now_ns) }
/// ```
///
/// The export is generated here, in the app, rather than defined in the
/// library, so that only apps using this attribute become reactors.
#[proc_macro_attribute]
pub fn main(attr: TokenStream, item: TokenStream) -> TokenStream {
    let parsed = match attr.into_iter().next() {
        Some(tt) => Err((tt.span(), "#[oasis::main] takes no arguments")),
        None => MainFn::parse(item),
    };
    match parsed {
        Ok(main) => main.expand(),
        Err((span, message)) => {
            // A stand-in `main` keeps rustc from adding "`main` function not
            // found" to the real error.
            let mut out = error(span, message);
            out.extend(code("fn main() {}"));
            out
        }
    }
}

/// The parts of `async fn main` the expansion reuses.
struct MainFn {
    /// Outer attributes (`#[...]`, doc comments), kept on the inner function.
    attrs: Vec<TokenTree>,
    /// `-> Type`, or nothing.
    output: Vec<TokenTree>,
    /// The `{ ... }` body.
    body: Group,
}

type ParseError = (Span, &'static str);

impl MainFn {
    fn parse(item: TokenStream) -> Result<MainFn, ParseError> {
        let mut tokens = item.into_iter().peekable();
        let mut attrs = Vec::new();

        // `#[...]`: `#` then a bracketed group.
        while let Some(TokenTree::Punct(p)) = tokens.peek() {
            if p.as_char() != '#' {
                break;
            }
            attrs.push(tokens.next().unwrap());
            match tokens.next() {
                Some(group @ TokenTree::Group(_)) => attrs.push(group),
                other => return Err((span_of(other.as_ref()), "expected an attribute")),
            }
        }

        // Visibility: `main` is private to the crate root either way, so
        // `pub` (with or without a restriction) is accepted and dropped.
        if matches!(tokens.peek(), Some(TokenTree::Ident(i)) if i.to_string() == "pub") {
            tokens.next();
            if matches!(tokens.peek(), Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis) {
                tokens.next();
            }
        }

        let first = tokens.next();
        match &first {
            Some(TokenTree::Ident(i)) if i.to_string() == "async" => {}
            Some(TokenTree::Ident(i)) if i.to_string() == "fn" => {
                return Err((i.span(), "#[oasis::main] needs an `async fn main`"));
            }
            other => {
                return Err((span_of(other.as_ref()), "#[oasis::main] goes on an `async fn main`"));
            }
        }
        match tokens.next() {
            Some(TokenTree::Ident(i)) if i.to_string() == "fn" => {}
            other => return Err((span_of(other.as_ref()), "expected `fn` after `async`")),
        }
        match tokens.next() {
            Some(TokenTree::Ident(i)) if i.to_string() == "main" => {}
            other => {
                return Err((span_of(other.as_ref()), "#[oasis::main] goes on the function named `main`"));
            }
        }
        match tokens.next() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Parenthesis => {
                if !g.stream().is_empty() {
                    return Err((g.span(), "`main` takes no arguments: use `std::env::args()`"));
                }
            }
            Some(TokenTree::Punct(p)) if p.as_char() == '<' => {
                return Err((p.span(), "`main` cannot be generic"));
            }
            other => return Err((span_of(other.as_ref()), "expected `()`")),
        }

        // Everything up to the body is the return type (`-> Type`), if any.
        let mut rest: Vec<TokenTree> = tokens.collect();
        let body = match rest.pop() {
            Some(TokenTree::Group(g)) if g.delimiter() == Delimiter::Brace => g,
            other => return Err((span_of(other.as_ref()), "expected the body of `main`")),
        };
        for tt in &rest {
            if matches!(tt, TokenTree::Ident(i) if i.to_string() == "where") {
                return Err((tt.span(), "`main` cannot have a `where` clause"));
            }
        }
        match rest.first() {
            None => {}
            Some(TokenTree::Punct(p)) if p.as_char() == '-' => {}
            Some(other) => return Err((other.span(), "expected `-> Type` or the body of `main`")),
        }

        Ok(MainFn { attrs, output: rest, body })
    }

    fn expand(self) -> TokenStream {
        // async fn __oasis_main() -> Output { body }
        let mut inner = TokenStream::from_iter(self.attrs);
        inner.extend(code("async fn __oasis_main()"));
        inner.extend(self.output.iter().cloned());
        inner.extend([TokenTree::Group(self.body)]);
        // The call carries the return type's location, so a `main` that
        // returns something unsupported gets its error pointed there.
        let start = code("::oasis::rt::__start_root(__oasis_main());");
        // `output` is `-`, `>`, then the type.
        match self.output.get(2).map(TokenTree::span) {
            Some(output) => inner.extend(located_at(start, output)),
            None => inner.extend(start),
        }

        let mut out = code("fn main()");
        out.extend([TokenTree::Group(Group::new(Delimiter::Brace, inner))]);
        out.extend(code(
            "/// The reactor entry point (ABI.md section 5), generated by `#[oasis::main]`.\n\
             #[doc(hidden)]\n\
             #[unsafe(export_name = \"oasis_v1_poll\")]\n\
             pub extern \"C\" fn __oasis_v1_poll(now_ns: i64) -> i64 {\n\
                 ::oasis::rt::__poll(now_ns)\n\
             }",
        ));
        out
    }
}

fn code(source: &str) -> TokenStream {
    source.parse().expect("the macro's own tokens parse")
}

/// `stream` with every token reported at `location` (hygiene unchanged).
fn located_at(stream: TokenStream, location: Span) -> TokenStream {
    stream
        .into_iter()
        .map(|mut tt| {
            if let TokenTree::Group(g) = &tt {
                let mut group = Group::new(g.delimiter(), located_at(g.stream(), location));
                group.set_span(g.span().located_at(location));
                tt = TokenTree::Group(group);
            } else {
                tt.set_span(tt.span().located_at(location));
            }
            tt
        })
        .collect()
}

fn span_of(tt: Option<&TokenTree>) -> Span {
    tt.map_or_else(Span::call_site, TokenTree::span)
}

/// `compile_error!("message");` pointing at `span`.
fn error(span: Span, message: &str) -> TokenStream {
    let mut bang = Punct::new('!', Spacing::Alone);
    bang.set_span(span);
    let mut semi = Punct::new(';', Spacing::Alone);
    semi.set_span(span);
    let mut text = proc_macro::Literal::string(message);
    text.set_span(span);
    let mut args = Group::new(Delimiter::Parenthesis, TokenStream::from(TokenTree::Literal(text)));
    args.set_span(span);
    TokenStream::from_iter([
        TokenTree::Ident(Ident::new("compile_error", span)),
        TokenTree::Punct(bang),
        TokenTree::Group(args),
        TokenTree::Punct(semi),
    ])
}
