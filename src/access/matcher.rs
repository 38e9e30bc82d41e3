//! ARNs and patterns against patterns: the questions classification asks (is one contained
//! in another, can two overlap), over the wildcards of `policy::wildcard`.

pub use crate::policy::wildcard::{Tok, glob, glob_tokens, tokens};
pub(crate) use crate::policy::wildcard::{glob_bytes, same};

/// Whether every string `inner` stands for is one `outer` stands for. Sound, not complete:
/// `true` is a proof; `false` may be a containment it could not see.
pub fn contains(outer: &str, inner: &str, ignore_case: bool) -> bool {
    if !inner.contains(['*', '?']) {
        // The common case (an action name, an exact ARN): a plain match, no allocation.
        return glob_bytes(outer.as_bytes(), inner.as_bytes(), ignore_case);
    }
    let o = tokens(outer);
    let i = tokens(inner);
    if o.iter().all(|t| *t == Tok::Star) && !o.is_empty() {
        return true;
    }
    // Bounded work and recursion depth: longer patterns than IAM allows are not proven.
    if o.len() + i.len() > 4096 {
        return false;
    }
    contained(&o, &i, ignore_case, &mut 0)
}

/// `contains` for resource patterns, which IAM matches part by part when they are ARNs (a
/// wildcard does not reach across the colons of the first five parts): both ARN-shaped,
/// compared part by part; neither, as whole strings; one of each, only `*` contains.
pub fn resource_contains(outer: &str, inner: &str) -> bool {
    let all_stars = |s: &str| !s.is_empty() && s.chars().all(|c| c == '*');
    if all_stars(outer) {
        return true;
    }
    fn parts(s: &str) -> Option<Vec<&str>> {
        let p: Vec<&str> = s.splitn(6, ':').collect();
        (p.len() == 6).then_some(p)
    }
    match (parts(outer), parts(inner)) {
        (Some(o), Some(i)) => o.iter().zip(&i).all(|(o, i)| contains(o, i, false)),
        (None, None) => contains(outer, inner, false),
        _ => false,
    }
}

/// Pattern-in-pattern matching: an outer `*` takes any run of inner tokens, an outer `?`
/// one inner character or `?`, a literal only the same literal. Bounded: patterns with
/// many stars give up (false: not proven) rather than take exponential time.
fn contained(o: &[Tok], i: &[Tok], ic: bool, steps: &mut usize) -> bool {
    *steps += 1;
    if *steps > 5_000 {
        return false;
    }
    match (o.first(), i.first()) {
        (None, None) => true,
        (None, Some(_)) => false,
        (Some(Tok::Star), _) => (0..=i.len()).any(|k| contained(&o[1..], &i[k..], ic, steps)),
        (Some(_), None) => false,
        (Some(Tok::One), Some(Tok::Char(_) | Tok::One)) => contained(&o[1..], &i[1..], ic, steps),
        (Some(Tok::Char(a)), Some(Tok::Char(b))) if same(*a, *b, ic) => {
            contained(&o[1..], &i[1..], ic, steps)
        }
        _ => false,
    }
}

/// Whether some string could match both patterns. Conservative: `true` unless the literal
/// heads or tails of the two patterns disagree.
pub fn may_overlap(a: &str, b: &str, ignore_case: bool) -> bool {
    if !a.contains(['*', '?']) {
        return glob(b, a, ignore_case);
    }
    if !b.contains(['*', '?']) {
        return glob(a, b, ignore_case);
    }
    let head = |s: &str| {
        s.chars()
            .take_while(|c| *c != '*' && *c != '?')
            .collect::<String>()
    };
    let tail = |s: &str| {
        let mut t: Vec<char> = s
            .chars()
            .rev()
            .take_while(|c| *c != '*' && *c != '?')
            .collect();
        t.reverse();
        t.into_iter().collect::<String>()
    };
    let compatible = |x: &str, y: &str, prefix: bool| {
        let (x, y) = if ignore_case {
            (x.to_ascii_lowercase(), y.to_ascii_lowercase())
        } else {
            (x.to_string(), y.to_string())
        };
        if prefix {
            x.starts_with(&y) || y.starts_with(&x)
        } else {
            x.ends_with(&y) || y.ends_with(&x)
        }
    };
    compatible(&head(a), &head(b), true) && compatible(&tail(a), &tail(b), false)
}

/// An ARN's six parts; the resource part keeps its own colons. `None` for text that is not
/// an ARN.
pub fn arn_parts(arn: &str) -> Option<[&str; 6]> {
    let mut it = arn.splitn(6, ':');
    let parts = [
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
        it.next()?,
    ];
    (parts[0] == "arn").then_some(parts)
}

/// The account of an ARN, when it names one.
pub fn arn_account(arn: &str) -> Option<&str> {
    arn_parts(arn).map(|p| p[4]).filter(|a| !a.is_empty())
}

/// An `ArnLike`/`ArnEquals` condition value against an ARN: "each of the six
/// colon-delimited components of the ARN is checked separately" (AWS's condition
/// operators documentation), so no wildcard reaches across a colon of the first five.
pub fn arn_like(pattern: &[Tok], arn: &str) -> bool {
    let colon = |t: &Tok| *t == Tok::Char(':');
    let split: Vec<&[Tok]> = {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while parts.len() < 5 {
            match rest.iter().position(colon) {
                Some(i) => {
                    parts.push(&rest[..i]);
                    rest = &rest[i + 1..];
                }
                None => break,
            }
        }
        parts.push(rest);
        parts
    };
    match (split.len(), arn_parts(arn)) {
        (6, Some(r)) => split
            .iter()
            .zip(r.iter())
            .all(|(p, r)| glob_tokens(p, r, false)),
        _ => glob_tokens(pattern, arn, false),
    }
}

/// A resource pattern (tokens, variables already resolved) against a request's resource.
/// When the resource is an ARN, a wildcard in the first five parts stays in its part,
/// except a `*` that ends its part (followed by `:` or the end of the pattern), which may
/// reach across colons (AWS's Resource element documentation: "If the * wildcard is the
/// last character of a resource ARN segment, it can expand to match beyond colon
/// boundaries"); in the resource part, colons are ordinary characters. Otherwise as a
/// whole. Case-sensitive, as IAM compares resources.
pub fn resource_matches(pattern: &[Tok], resource: &str) -> bool {
    if pattern.len() == 1 && pattern[0] == Tok::Star {
        return true;
    }
    if arn_parts(resource).is_none() {
        return glob_tokens(pattern, resource, false);
    }
    // Which wildcards may take a colon: decided by the pattern alone.
    let mut colons = 0;
    let crosses: Vec<bool> = pattern
        .iter()
        .enumerate()
        .map(|(i, t)| {
            if *t == Tok::Char(':') {
                colons += 1;
            }
            colons >= 5
                || (*t == Tok::Star && matches!(pattern.get(i + 1), None | Some(Tok::Char(':'))))
        })
        .collect();
    let text: Vec<char> = resource.chars().collect();
    // Several stars with different reach: no single backtrack point suffices, so a table
    // of (pattern position, text position), linear in their product (IAM's ARNs are short).
    let (n, m) = (pattern.len(), text.len());
    let mut next = vec![false; m + 1];
    next[m] = true;
    for i in (0..n).rev() {
        let mut cur = vec![false; m + 1];
        for j in (0..=m).rev() {
            let takes = |j: usize| j < m && (text[j] != ':' || crosses[i]);
            cur[j] = match pattern[i] {
                Tok::Star => next[j] || (takes(j) && cur[j + 1]),
                Tok::One => takes(j) && next[j + 1],
                Tok::Char(c) => j < m && text[j] == c && next[j + 1],
            };
        }
        next = cur;
    }
    next[0]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs_and_literal_stars() {
        assert!(glob("s3:Get*", "s3:getobject", true));
        assert!(!glob("s3:Get*", "s3:getobject", false));
        assert!(glob("a?c", "abc", false));
        assert!(!glob("a?c", "ac", false));
        let literal = [Tok::Char('a'), Tok::Char('*')];
        assert!(glob_tokens(&literal, "a*", false));
        assert!(!glob_tokens(&literal, "ab", false));
    }

    #[test]
    fn byte_glob_agrees_with_token_glob() {
        for (p, t) in [
            ("s3:Get*", "s3:getobject"),
            ("a*b?c", "axxbyc"),
            ("*", ""),
            ("a?", "a"),
            ("é*", "éa"),
            ("?", "é"),
        ] {
            for ic in [true, false] {
                assert_eq!(
                    glob_bytes(p.as_bytes(), t.as_bytes(), ic),
                    glob(p, t, ic),
                    "{p} {t} {ic}"
                );
            }
        }
    }

    #[test]
    fn containment_is_a_proof() {
        assert!(contains("s3:*", "s3:Get*", true));
        assert!(contains("*", "anything*", false));
        assert!(contains("arn:aws:s3:::b/*", "arn:aws:s3:::b/x/*", false));
        assert!(!contains("arn:aws:s3:::b/x/*", "arn:aws:s3:::b/*", false));
        assert!(!contains("s3:Get?bject", "s3:Get*bject", true));
        assert!(contains("s3:Get?bject", "s3:Get?bject", true));
        assert!(!contains("s3:GetObject", "s3:GetObjec?", true));
        // A star in the region does not swallow the account.
        assert!(contains(
            "arn:aws:lambda:*:function:f",
            "arn:aws:lambda:us-east-1:1:function:f",
            false
        ));
        assert!(!resource_contains(
            "arn:aws:lambda:*:function:f",
            "arn:aws:lambda:us-east-1:1:function:f"
        ));
        assert!(resource_contains(
            "arn:aws:lambda:*:1:function:*",
            "arn:aws:lambda:us-east-1:1:function:f"
        ));
        assert!(resource_contains("*", "arn:aws:s3:::b"));
        assert!(!resource_contains("arn:*", "arn:aws:s3:::b"));
    }

    #[test]
    fn overlap_is_conservative() {
        assert!(may_overlap("arn:aws:s3:::a/*", "arn:aws:s3:::a/b", false));
        assert!(!may_overlap("arn:aws:s3:::a/*", "arn:aws:s3:::b/*", false));
        assert!(may_overlap("*x", "a*", false));
        assert!(!may_overlap("*.txt", "*.png", false));
    }

    #[test]
    fn arns_match_part_by_part() {
        let p = tokens("arn:aws:lambda:*:123456789012:function:f*");
        assert!(resource_matches(
            &p,
            "arn:aws:lambda:us-east-1:123456789012:function:f1"
        ));
        assert!(!resource_matches(
            &p,
            "arn:aws:lambda:us-east-1:210987654321:function:f1"
        ));
        // A star inside the region stays in the region; one that ends it may reach on.
        let q = tokens("arn:aws:lambda:*1:function:f1");
        assert!(!resource_matches(
            &q,
            "arn:aws:lambda:us-east-1:123456789012:function:f1"
        ));
        let r = tokens("arn:aws:lambda:*:function:f1");
        assert!(resource_matches(
            &r,
            "arn:aws:lambda:us-east-1:123456789012:function:f1"
        ));
        assert!(resource_matches(&tokens("*"), "anything"));
        assert_eq!(
            arn_account("arn:aws:iam::111122223333:root"),
            Some("111122223333")
        );
        assert_eq!(arn_account("arn:aws:s3:::b"), None);
    }
}
