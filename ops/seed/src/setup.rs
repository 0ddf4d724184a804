//! Setting the stage as a running service would have: Charter's own permissions, a
//! bootstrapped platform administrator, the seeded services' registrations, a first customer.
//! Also the rare relabelling of a registered permission.

use super::gen::{pending, Gen};
use super::make;
use super::names::SERVICES;
use super::world::{Platform, Subject};
use super::Existing;
use charter::domain::permission_registry::{CHARTER_PERMISSIONS, CHARTER_SERVICE};
use charter_events::streams::{registry_stream, user_stream, PERMISSION_NAME_SCOPE};
use charter_events::Metadata;

impl Gen {
    /// What a running service already did before any admin acted: registered its own
    /// permissions, bootstrapped a platform administrator. Then the seeded services register
    /// theirs, and the first customer signs up.
    pub fn setup(&mut self, existing: &Existing) {
        self.slugs = existing.slugs.clone();
        let (charter, version) = existing.registry(CHARTER_SERVICE);
        if version == 0 {
            let meta = self.system_meta("system");
            let own: Vec<(String, String)> = (CHARTER_PERMISSIONS.iter())
                .map(|(n, l)| (n.to_string(), l.to_string()))
                .collect();
            self.register(CHARTER_SERVICE, 0, &own, meta);
        }
        self.w.grantable = match version {
            0 => CHARTER_PERMISSIONS
                .iter()
                .map(|(n, _)| n.to_string())
                .collect(),
            _ => charter.keys().cloned().collect(),
        };
        match existing.platform {
            Some(platform) => self.w.platform = Some(platform),
            None => self.bootstrap(),
        }
        for (service, permissions) in SERVICES {
            let (known, version) = existing.registry(service);
            let stream = registry_stream(service);
            let mut all: Vec<(String, String)> = known.into_iter().collect();
            let new: Vec<(String, String)> = (permissions.iter())
                .filter(|(n, _)| !all.iter().any(|(k, _)| k == n))
                .filter(|(n, _)| {
                    existing
                        .permission_holders
                        .get(*n)
                        .is_none_or(|s| *s == stream)
                })
                .map(|(n, l)| (n.to_string(), l.to_string()))
                .collect();
            if !new.is_empty() {
                let meta = self.platform_meta();
                self.register(service, version, &new, meta);
            } else if version > 0 {
                self.w
                    .registry_versions
                    .push((service.to_string(), version));
            }
            all.extend(new);
            for (name, label) in all {
                self.w.grantable.push(name.clone());
                self.w.registry.push((service.to_string(), name, label));
            }
        }
        self.onboard_tenant();
        self.schedule.done(
            super::mix::Kind::CreateTenant,
            self.progress(),
            &mut self.rng,
        );
    }

    /// One registration command: `permission.registered` for each new name.
    fn register(&mut self, service: &str, version: i64, new: &[(String, String)], meta: Metadata) {
        let stream = registry_stream(service);
        let mut v = version;
        let events = (new.iter())
            .map(|(name, label)| {
                self.out.claim(PERMISSION_NAME_SCOPE, name, &stream);
                pending(
                    stream.clone(),
                    &mut v,
                    &make::permission_registered(service, name, label),
                )
            })
            .collect();
        self.emit(meta, events);
        match self
            .w
            .registry_versions
            .iter_mut()
            .find(|(s, _)| s == service)
        {
            Some(entry) => entry.1 = v,
            None => self.w.registry_versions.push((service.to_owned(), v)),
        }
    }

    /// What `charter serve` does on a fresh database with a bootstrap administrator configured.
    fn bootstrap(&mut self) {
        let slug = self.unique_slug("platform");
        let meta = self.system_meta("system:bootstrap");
        let t = self.create_tenant(&slug.clone(), slug, None, meta, 0.3);
        self.w.tenants[t].protected = true;
        self.w.platform_tenant = Some(t);
        let meta = self.system_meta("system:bootstrap");
        let u = self.create_user(t, true, meta);
        let admin_role = self.w.tenants[t].roles[0];
        let meta = self.system_meta("system:bootstrap");
        self.grant_role(t, admin_role, Subject::User(u), None, meta);
        let (user_id, tenant_id) = (self.w.users[u].id, self.w.tenants[t].id);
        let stream = user_stream(user_id);
        let grant = make::user_platform_access_granted(user_id, tenant_id, vec!["iam.*".into()]);
        let event = pending(stream, &mut self.w.users[u].version, &grant);
        let meta = self.system_meta("system:bootstrap");
        self.emit(meta, vec![event]);
        self.w.tenants[t].admin = Some(u);
        self.w.platform = Some(Platform { user_id, tenant_id });
    }

    pub fn unique_slug(&mut self, base: &str) -> String {
        let mut slug = base.to_owned();
        let mut n = 1;
        while self.slugs.contains(&slug) {
            n += 1;
            slug = format!("{base}-{n}");
        }
        self.slugs.insert(slug.clone());
        slug
    }

    pub fn relabel_permission(&mut self) -> bool {
        if self.w.registry.is_empty() {
            return false;
        }
        let at = self.rng.below(self.w.registry.len());
        let (service, name, previous) = self.w.registry[at].clone();
        let label = match previous.strip_suffix(" (deprecated)") {
            Some(base) => base.to_owned(),
            None => format!("{previous} (deprecated)"),
        };
        let stream = registry_stream(&service);
        let Some(entry) = self
            .w
            .registry_versions
            .iter_mut()
            .find(|(s, _)| *s == service)
        else {
            return false;
        };
        let event = pending(
            stream,
            &mut entry.1,
            &make::permission_label_changed(&service, &name, &label, &previous),
        );
        self.w.registry[at].2 = label;
        let meta = self.platform_meta();
        self.emit(meta, vec![event]);
        true
    }
}
