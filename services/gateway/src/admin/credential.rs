//! The credential an admin request presented: its name, recorded in the
//! audit log, and its scope, which [`super::scope`] checks before the
//! handler runs. The bootstrap token of `--admin-token-file` is the full
//! admin named `bootstrap`; named admin tokens come from the registry.

/// The name the `--admin-token-file` credential goes by in the audit log.
pub(crate) const BOOTSTRAP_NAME: &str = "bootstrap";

/// The credential an admin request presented: its name (recorded in the
/// audit log) and scope. Handlers find it in the request's extensions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AdminCredential {
    /// The token's name; `bootstrap` for the `--admin-token-file` token.
    pub(crate) name: String,
    /// What it may do.
    pub(crate) scope: Scope,
}

/// What an admin credential may do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Scope {
    /// Read everything, change nothing.
    ReadOnly,
    /// Read and change only these Source ids.
    SourceAdmin(Vec<String>),
    /// Everything.
    FullAdmin,
}

// === impl AdminCredential ===

impl AdminCredential {
    /// The `--admin-token-file` credential: full admin, named `bootstrap`.
    pub(crate) fn bootstrap() -> AdminCredential {
        AdminCredential {
            name: BOOTSTRAP_NAME.to_owned(),
            scope: Scope::FullAdmin,
        }
    }

    /// Whether the credential may act on (see, and change if it may change
    /// anything) Source `source_id`.
    pub(crate) fn may_act_on(&self, source_id: &str) -> bool {
        match &self.scope {
            Scope::ReadOnly | Scope::FullAdmin => true,
            Scope::SourceAdmin(ids) => ids.iter().any(|id| id == source_id),
        }
    }

    /// Whether the credential may do everything (the dashboard needs that).
    pub(crate) fn is_full_admin(&self) -> bool {
        self.scope == Scope::FullAdmin
    }

    /// The scope in words, for refusals.
    pub(super) fn scope_words(&self) -> &'static str {
        match self.scope {
            Scope::ReadOnly => "read-only",
            Scope::SourceAdmin(_) => "a Source admin",
            Scope::FullAdmin => "a full admin",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Read-only and full admins see every Source; a Source admin only its own.
    #[test]
    fn source_visibility() {
        let scoped = AdminCredential {
            name: "shop team".to_owned(),
            scope: Scope::SourceAdmin(vec!["src_a".to_owned()]),
        };
        assert!(scoped.may_act_on("src_a"));
        assert!(!scoped.may_act_on("src_b"));
        assert!(AdminCredential::bootstrap().may_act_on("src_b"));
        assert!(AdminCredential::bootstrap().is_full_admin());
        assert!(!scoped.is_full_admin());
    }
}
