//! One module per IAM kind. Each owns, for its kind: the model type, its plan-file section
//! and checks, the conversion from the live read, the diff into changes and steps, and
//! its teardown. `IamKind` is what every kind provides; `principal` holds what roles,
//! users and groups share (inline policies, attachments, tags, boundaries).

pub mod access_key;
pub mod group;
pub mod managed_policy;
pub mod principal;
pub mod role;
pub mod trust;
pub mod user;

pub use group::Group;
pub use managed_policy::ManagedPolicy;
pub use role::Role;
pub use user::User;

use crate::diff::DiffCx;
use crate::model::{Kind, LiveResource, Resource};
use crate::spec::{BuildCx, SpecError, Str};

/// A live resource whose document cannot be read (the read stops: planning without it
/// could delete or overwrite what it says).
#[derive(Debug, thiserror::Error)]
#[error("{entity}: cannot read its {part}: {source}")]
pub struct UnreadableDocument {
    pub entity: String,
    pub part: String,
    pub source: crate::policy::LiveDocumentError,
}

impl UnreadableDocument {
    pub fn new(
        kind: Kind,
        name: &str,
        part: &str,
    ) -> impl FnOnce(crate::policy::LiveDocumentError) -> Self {
        let (entity, part) = (format!("{} {name}", kind.label()), part.to_string());
        move |source| UnreadableDocument {
            entity,
            part,
            source,
        }
    }
}

/// What the compiler asks of a new kind.
pub trait IamKind: Sized {
    const KIND: Kind;
    /// IAM's limit on the kind's names.
    const MAX_NAME_LEN: usize;
    /// The plan-file section, e.g. `[role.NAME]`.
    type Section: Section;

    /// Builds the desired resource from its section.
    fn build(cx: &BuildCx, section: &Self::Section) -> Result<Self, SpecError>;

    fn into_resource(self) -> Resource;
    /// The resource as this kind, if it is one.
    fn of(r: &Resource) -> Option<&Self>;

    /// Plans the creation of a declared resource that does not exist.
    fn create(&self, cx: &mut DiffCx);
    /// Plans what makes the live resource match this one (`adopting`: it has no owner yet).
    fn update(&self, live: &Self, lr: &LiveResource, cx: &mut DiffCx, adopting: bool);
    /// Plans the deletion of this live resource, owned by the stack and no longer declared.
    fn delete(&self, lr: &LiveResource, cx: &mut DiffCx);
}

/// What every kind's section has.
pub trait Section {
    /// The account alias (`account = "..."`), if not the default one.
    fn account(&self) -> &Option<Str>;
    /// `adopt = true`: take over a same-named resource no stack owns.
    fn adopt(&self) -> bool;
    /// `allow_widening = true`: `--deny-widening` lets this resource's access widen.
    fn allow_widening(&self) -> bool;
    /// `lint_ignore = { CODE = "why" }`: findings not to report for this resource.
    fn lint_ignore(&self) -> &std::collections::BTreeMap<toml::Spanned<String>, Str>;
}

/// Implements `IamKind::into_resource` and `IamKind::of` for the `Resource` variant of
/// the same name.
macro_rules! resource_variant {
    ($t:ident) => {
        fn into_resource(self) -> Resource {
            Resource::$t(self)
        }
        fn of(r: &Resource) -> Option<&Self> {
            match r {
                Resource::$t(x) => Some(x),
                _ => None,
            }
        }
    };
}
pub(crate) use resource_variant;

/// Implements `Section` for sections with `account` and `adopt` fields.
macro_rules! section {
    ($($t:ty),*) => {$(
        impl crate::iam::Section for $t {
            fn account(&self) -> &Option<crate::spec::Str> {
                &self.account
            }
            fn adopt(&self) -> bool {
                self.adopt
            }
            fn allow_widening(&self) -> bool {
                self.allow_widening
            }
            fn lint_ignore(
                &self,
            ) -> &std::collections::BTreeMap<toml::Spanned<String>, crate::spec::Str> {
                &self.lint_ignore
            }
        }
    )*};
}
pub(crate) use section;
