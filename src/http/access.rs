//! What a route requires of its caller: the vocabulary of the route table
//! ([`super::routes`]), which authorization ([`super::authorize`]) enforces and the OpenAPI
//! document ([`super::openapi`]) describes.

/// What a route requires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rule {
    /// No token (login, refresh, the token endpoint, well-known documents, operations).
    Public,
    /// Any valid token; the handler decides the rest.
    Authenticated,
    /// A token of the account itself, not scoped to a workspace: managing one's own
    /// credentials (password, second factor, sessions). Workspace-scoped tokens are handed to
    /// services' data planes, and a service must not be able to take over its users.
    Account,
    /// The permission in the path's tenant, or an ancestor.
    Tenant(&'static str),
    /// The permission in a strict ancestor of the path's tenant (a tenant's lifecycle is its
    /// parent's business).
    Parent(&'static str),
    /// A platform-wide grant.
    Platform(&'static str),
    /// The permission in the caller's own token, whatever its tenant, or a platform grant:
    /// global resources every tenant's administrators may read (the permission registry).
    Holds(&'static str),
}
