//! The character patterns and lengths IAM and STS check strings against, from the AWS API
//! models (botocore's `iam/2010-05-08/service-2.json` and `sts/2011-06-15/service-2.json`,
//! shapes named below), so that a value AWS would refuse fails `validate` at its place in
//! the file instead of stopping an apply half-way. Names (`[\w+=,.@-]+`, ASCII `\w`) are
//! checked by `valid_name`.

use super::builder::At;
use super::error::SpecError;
use regex::Regex;
use std::ops::Range;
use std::sync::LazyLock;

/// One string shape of an API model: its pattern (anchored here), the characters it
/// allows one by one, and its lengths.
pub struct Shape {
    /// What the value is, in the user's words.
    pub what: &'static str,
    /// The characters it allows, in words, for the error's help.
    pub allowed: &'static str,
    pub min: usize,
    pub max: usize,
    whole: LazyLock<Regex>,
    one: LazyLock<Regex>,
}

macro_rules! shape {
    ($name:ident, $what:literal, $pattern:literal, $chars:literal, $allowed:literal, $min:literal, $max:literal) => {
        pub static $name: Shape = Shape {
            what: $what,
            allowed: $allowed,
            min: $min,
            max: $max,
            whole: LazyLock::new(|| {
                Regex::new(concat!("^(?:", $pattern, ")$")).expect("a model pattern")
            }),
            one: LazyLock::new(|| Regex::new(concat!("^", $chars, "$")).expect("a class")),
        };
    };
}

// iam: roleDescriptionType.
shape!(
    ROLE_DESCRIPTION,
    "a role description",
    r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]*",
    r"[\u0009\u000A\u000D\u0020-\u007E\u00A1-\u00FF]",
    "tab, newline, carriage return, U+0020 to U+007E and U+00A1 to U+00FF (Latin-1)",
    0,
    1000
);
// iam and sts: tagKeyType.
shape!(
    TAG_KEY,
    "a tag key",
    r"[\p{L}\p{Z}\p{N}_.:/=+\-@]+",
    r"[\p{L}\p{Z}\p{N}_.:/=+\-@]",
    "letters, digits and spaces (of any script) and _ . : / = + - @",
    1,
    128
);
// iam and sts: tagValueType.
shape!(
    TAG_VALUE,
    "a tag value",
    r"[\p{L}\p{Z}\p{N}_.:/=+\-@]*",
    r"[\p{L}\p{Z}\p{N}_.:/=+\-@]",
    "letters, digits and spaces (of any script) and _ . : / = + - @",
    0,
    256
);
// iam: pathType (roles, users, groups, instance profiles).
shape!(
    PATH,
    "a path",
    r"(\u002F)|(\u002F[\u0021-\u007E]+\u002F)",
    r"[\u0021-\u007E]",
    "`/` alone, or printable ASCII (U+0021 to U+007E, no spaces) that starts and ends with `/`, e.g. \"/integrations/\"",
    1,
    512
);
// iam: policyPathType (managed policies: stricter than the other kinds' paths).
shape!(
    POLICY_PATH,
    "a managed policy's path",
    r"((/[A-Za-z0-9\.,\+@=_-]+)*)/",
    r"[/A-Za-z0-9\.,\+@=_-]",
    "letters, digits and . , + @ = _ - between slashes, starting and ending with `/`, e.g. \"/team/\"",
    1,
    512
);
// sts: roleSessionNameType, `[\w+=,.@-]*` (AWS's `\w` is ASCII: spelt out here).
shape!(
    SESSION_NAME,
    "a role session name",
    r"[A-Za-z0-9_+=,.@-]*",
    r"[A-Za-z0-9_+=,.@-]",
    "letters, digits and _ + = , . @ -",
    2,
    64
);

impl Shape {
    /// Why AWS would refuse `value`, if it would: the first character outside the
    /// pattern, the pattern, or the length (in characters, as the models count).
    pub fn check(&self, value: &str) -> Result<(), String> {
        let mut buf = [0u8; 4];
        if let Some(c) = value
            .chars()
            .find(|c| !self.one.is_match(c.encode_utf8(&mut buf)))
        {
            return Err(format!("{} may not contain {}", self.what, describe(c)));
        }
        let n = value.chars().count();
        if n < self.min || n > self.max {
            return Err(format!(
                "{} has {n} characters; AWS allows {} to {}",
                self.what, self.min, self.max
            ));
        }
        if !self.whole.is_match(value) {
            return Err(format!("{} \"{value}\" has the wrong form", self.what));
        }
        Ok(())
    }
}

/// `value`, written at `span`, as AWS would take it, or the error that says why not.
pub fn check_at(at: &At, span: Range<usize>, value: &str, shape: &Shape) -> Result<(), SpecError> {
    shape.check(value).map_err(|why| {
        at.err(span, why)
            .with_help(format!("AWS accepts {}", shape.allowed))
    })
}

/// A character as the user can find it: itself when visible, and its code point.
fn describe(c: char) -> String {
    if c.is_control() || c.is_whitespace() || ('\u{200B}'..='\u{206F}').contains(&c) {
        format!("U+{:04X}", c as u32)
    } else {
        format!("'{c}' (U+{:04X})", c as u32)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_descriptions_take_latin_1_only() {
        assert!(ROLE_DESCRIPTION.check("Café déjà vu\ttab\nline ©").is_ok());
        assert!(ROLE_DESCRIPTION.check("").is_ok());
        assert_eq!(
            ROLE_DESCRIPTION.check("部署ロール").unwrap_err(),
            "a role description may not contain '部' (U+90E8)"
        );
        assert_eq!(
            ROLE_DESCRIPTION.check("abc\u{202E}def").unwrap_err(),
            "a role description may not contain U+202E"
        );
        // U+0080..U+00A0 are outside the pattern (C1 controls and no-break space).
        assert!(ROLE_DESCRIPTION.check("a\u{00A0}b").is_err());
        assert!(ROLE_DESCRIPTION.check(&"x".repeat(1001)).is_err());
    }

    #[test]
    fn tags_take_letters_digits_spaces_and_a_few_signs_in_any_script() {
        assert!(TAG_KEY.check("team:データ/é").is_ok());
        assert!(TAG_VALUE.check("").is_ok());
        assert!(TAG_KEY.check("").is_err());
        assert_eq!(
            TAG_VALUE.check("ship it 🚀").unwrap_err(),
            "a tag value may not contain '🚀' (U+1F680)"
        );
        assert!(TAG_VALUE.check("a,b").is_err());
        assert!(TAG_VALUE.check(&"v".repeat(256)).is_ok());
        assert!(TAG_VALUE.check(&"v".repeat(257)).is_err());
        assert!(TAG_KEY.check(&"k".repeat(129)).is_err());
    }

    #[test]
    fn paths_are_printable_ascii_and_policy_paths_stricter() {
        assert!(PATH.check("/").is_ok());
        assert!(PATH.check("/a b/").is_err());
        assert!(PATH.check("/x!y/").is_ok());
        assert_eq!(
            PATH.check("/café/").unwrap_err(),
            "a path may not contain 'é' (U+00E9)"
        );
        assert!(PATH.check("/a").is_err());
        assert!(POLICY_PATH.check("/team/data/").is_ok());
        assert!(POLICY_PATH.check("/x!y/").is_err());
    }

    #[test]
    fn session_names_are_two_to_64_name_characters() {
        assert!(SESSION_NAME.check("ably-rule").is_ok());
        assert!(SESSION_NAME.check("a").is_err());
        assert!(SESSION_NAME.check("with space").is_err());
    }
}
