//! The `permission_registry` aggregate: the permissions one service enforces. Registering is
//! idempotent: the same set again appends nothing, a changed label appends a label change.

use std::collections::BTreeMap;

use charter_events::permission::{PermissionEvent, PermissionLabelChanged, PermissionRegistered};

use super::{Aggregate, Rejection};

/// The service name Charter registers its own permissions under.
pub const CHARTER_SERVICE: &str = "charter";

/// The permissions Charter itself enforces on its API.
pub const CHARTER_PERMISSIONS: &[(&str, &str)] = &[
    ("iam.tenants.read", "Read tenants"),
    (
        "iam.tenants.write",
        "Create, change, block and delete tenants",
    ),
    ("iam.workspaces.read", "Read workspaces"),
    (
        "iam.workspaces.write",
        "Create, rename and delete workspaces",
    ),
    ("iam.users.read", "Read users"),
    (
        "iam.users.write",
        "Create, change, disable and delete users",
    ),
    ("iam.groups.read", "Read groups and their members"),
    (
        "iam.groups.write",
        "Create and delete groups, manage members",
    ),
    ("iam.roles.read", "Read roles"),
    ("iam.roles.write", "Create, change and delete roles"),
    ("iam.assignments.read", "Read role assignments"),
    ("iam.assignments.write", "Assign and unassign roles"),
    ("iam.permissions.read", "Read the permission registry"),
    ("iam.permissions.write", "Register permissions"),
    (
        "iam.entitlements.read",
        "Read entitlements and check permissions",
    ),
    ("iam.service_accounts.write", "Manage service accounts"),
    ("iam.audit.read", "Read the audit log"),
];

/// The write model of one service's registry stream.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PermissionRegistry {
    /// Name → label.
    pub permissions: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Register {
    pub service: String,
    /// (name, label), names unique (the HTTP layer checks).
    pub permissions: Vec<(String, String)>,
}

/// Registration cannot be refused by the registry itself; a name another service registered
/// is refused by the write-side claim on the name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RegistryError {}

impl From<RegistryError> for Rejection {
    fn from(e: RegistryError) -> Self {
        match e {}
    }
}

impl Aggregate for PermissionRegistry {
    type Command = Register;
    type Event = PermissionEvent;
    type Error = RegistryError;

    fn apply(mut self, event: &PermissionEvent) -> Self {
        match event {
            PermissionEvent::Registered(e) => {
                self.permissions.insert(e.name.clone(), e.label.clone());
            }
            PermissionEvent::LabelChanged(e) => {
                self.permissions.insert(e.name.clone(), e.label.clone());
            }
        }
        self
    }

    fn decide(&self, command: &Register) -> Result<Vec<PermissionEvent>, RegistryError> {
        Ok(command
            .permissions
            .iter()
            .filter_map(|(name, label)| match self.permissions.get(name) {
                None => Some(
                    PermissionRegistered {
                        service: command.service.clone(),
                        name: name.clone(),
                        label: label.clone(),
                    }
                    .into(),
                ),
                Some(current) if current != label => Some(
                    PermissionLabelChanged {
                        service: command.service.clone(),
                        name: name.clone(),
                        label: label.clone(),
                        previous_label: current.clone(),
                    }
                    .into(),
                ),
                Some(_) => None,
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::testing::given;

    fn register(perms: &[(&str, &str)]) -> Register {
        Register {
            service: "billing".into(),
            permissions: perms
                .iter()
                .map(|(n, l)| (n.to_string(), l.to_string()))
                .collect(),
        }
    }

    fn registered(name: &str, label: &str) -> PermissionEvent {
        PermissionRegistered {
            service: "billing".into(),
            name: name.into(),
            label: label.into(),
        }
        .into()
    }

    #[test]
    fn registers_new_permissions() {
        given::<PermissionRegistry>([])
            .when(register(&[
                ("invoices.read", "Read invoices"),
                ("invoices.pay", "Pay"),
            ]))
            .then([
                registered("invoices.read", "Read invoices"),
                registered("invoices.pay", "Pay"),
            ]);
    }

    #[test]
    fn registering_the_same_set_again_appends_nothing() {
        given::<PermissionRegistry>([registered("invoices.read", "Read invoices")])
            .when(register(&[("invoices.read", "Read invoices")]))
            .then([]);
    }

    #[test]
    fn a_changed_label_appends_a_label_change() {
        given::<PermissionRegistry>([registered("invoices.read", "Read invoices")])
            .when(register(&[
                ("invoices.read", "View invoices"),
                ("invoices.pay", "Pay"),
            ]))
            .then([
                PermissionLabelChanged {
                    service: "billing".into(),
                    name: "invoices.read".into(),
                    label: "View invoices".into(),
                    previous_label: "Read invoices".into(),
                }
                .into(),
                registered("invoices.pay", "Pay"),
            ]);
    }
}
