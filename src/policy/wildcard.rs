//! IAM's wildcards, `*` (any run) and `?` (one character), over text that may hold
//! literal characters produced by policy variables (`${*}` is a literal star): the one
//! matcher behind lint's action patterns, export's name filters and the evaluator.

/// One element of a pattern: a literal character, `*` (any run) or `?` (one character).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tok {
    Char(char),
    Star,
    One,
}

/// A pattern as written: `*` and `?` are wildcards, everything else literal.
pub fn tokens(pattern: &str) -> Vec<Tok> {
    let mut out: Vec<Tok> = Vec::with_capacity(pattern.len());
    for c in pattern.chars() {
        let t = match c {
            '*' => Tok::Star,
            '?' => Tok::One,
            c => Tok::Char(c),
        };
        // `**` means `*`: collapsed, so that a run of stars costs nothing to match.
        if !(t == Tok::Star && out.last() == Some(&Tok::Star)) {
            out.push(t);
        }
    }
    out
}

pub(crate) fn same(a: char, b: char, ignore_case: bool) -> bool {
    if ignore_case {
        a.eq_ignore_ascii_case(&b)
    } else {
        a == b
    }
}

/// Whether `text` is one of the strings `pattern` stands for. Iterative with one backtrack
/// point: linear for IAM's short patterns, and no recursion for hostile input.
pub fn glob_tokens(pattern: &[Tok], text: &str, ignore_case: bool) -> bool {
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        match pattern.get(pi) {
            Some(Tok::One) => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Char(c)) if same(*c, t[ti], ignore_case) => {
                pi += 1;
                ti += 1;
            }
            Some(Tok::Star) => {
                star = Some(pi);
                mark = ti;
                pi += 1;
            }
            _ => match star {
                Some(s) => {
                    pi = s + 1;
                    mark += 1;
                    ti = mark;
                }
                None => return false,
            },
        }
    }
    pattern[pi..].iter().all(|t| *t == Tok::Star)
}

/// `glob` over bytes, without allocating: UTF-8 text matches byte by byte, and `?` (one
/// character) is handled by falling back to `glob` when the text is not ASCII.
pub(crate) fn glob_bytes(p: &[u8], t: &[u8], ignore_case: bool) -> bool {
    if !t.is_ascii() || !p.is_ascii() {
        let (p, t) = (String::from_utf8_lossy(p), String::from_utf8_lossy(t));
        return glob(&p, &t, ignore_case);
    }
    let eq = |a: u8, b: u8| {
        if ignore_case {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    let (mut pi, mut ti) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while ti < t.len() {
        if pi < p.len() && p[pi] != b'*' && (p[pi] == b'?' || eq(p[pi], t[ti])) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == b'*' {
            while pi + 1 < p.len() && p[pi + 1] == b'*' {
                pi += 1;
            }
            star = Some(pi);
            mark = ti;
            pi += 1;
        } else if let Some(s) = star {
            pi = s + 1;
            mark += 1;
            ti = mark;
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == b'*')
}

/// `glob_tokens` for a pattern as written.
pub fn glob(pattern: &str, text: &str, ignore_case: bool) -> bool {
    glob_tokens(&tokens(pattern), text, ignore_case)
}
