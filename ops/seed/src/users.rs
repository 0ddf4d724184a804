//! Users: created with a username and an email free in the tenant (most with a password),
//! their emails and display names changed, disabled, enabled and deleted.

use charter_events::Metadata;

use super::gen::{pending, Gen};
use super::make::{self, Person};
use super::names::{FAMILY, GIVEN};
use super::world::{Ix, User, World};
use charter::domain::user::UserStatus;
use charter_events::streams::{email_scope, user_stream, username_scope};

impl Gen {
    /// A PBKDF2 PHC string with the service's default strength. The password behind it is
    /// random: nobody can sign in as a seeded user.
    pub fn password_hash(&mut self) -> String {
        use base64::engine::general_purpose::STANDARD_NO_PAD;
        use base64::Engine;
        let (mut salt, mut hash) = ([0u8; 16], [0u8; 32]);
        self.rng.fill(&mut salt);
        self.rng.fill(&mut hash);
        format!(
            "$pbkdf2-sha256$i={}${}${}",
            self.policy.pbkdf2_iterations,
            STANDARD_NO_PAD.encode(salt),
            STANDARD_NO_PAD.encode(hash)
        )
    }

    /// `user.created` (and `user.password_set` when the user gets a password) in tenant `t`,
    /// with a username and an email free in the tenant.
    pub fn create_user(&mut self, t: Ix, with_password: bool, meta: Metadata) -> Ix {
        let person = Person {
            given: GIVEN[self.rng.below(GIVEN.len())],
            family: FAMILY[self.rng.below(FAMILY.len())],
        };
        let (given, family) = (person.given.to_lowercase(), person.family.to_lowercase());
        let base = match self.rng.below(10) {
            0..7 => format!("{given}.{family}"),
            7..9 => format!("{}{family}", &given[..1]),
            _ => format!("{given}_{family}"),
        };
        let tenant = &mut self.w.tenants[t];
        let mut username = base.clone();
        while !tenant.take("u", &username) {
            tenant.counter += 1;
            username = format!("{base}{}", tenant.counter);
        }
        let mut email = format!("{username}@{}", tenant.domain);
        while !tenant.take("e", &email) {
            tenant.counter += 1;
            email = format!("{username}.{}@{}", tenant.counter, tenant.domain);
        }
        let tenant_id = tenant.id;
        let id = self.rng.uuid_v7(self.clock.now());
        let stream = user_stream(id);
        let mut version = 0;
        let display = (!self.rng.chance(0.03)).then_some(person);
        let created = make::user_created(id, tenant_id, &username, &email, display, with_password);
        let mut events = vec![pending(stream.clone(), &mut version, &created)];
        let password = with_password.then(|| self.password_hash());
        if let Some(hash) = &password {
            events.push(pending(
                stream.clone(),
                &mut version,
                &make::user_password_set(id, tenant_id, hash),
            ));
        }
        self.out
            .claim(&username_scope(tenant_id), &username, &stream);
        self.out.claim(&email_scope(tenant_id), &email, &stream);
        let u = self.w.users.len();
        let ip = self.new_ip();
        self.w.users.push(User {
            id,
            tenant: t,
            username,
            email,
            person,
            display_name: display.map(|p| p.display_name()),
            password,
            status: UserStatus::Active,
            account_version: 1,
            failed: 0,
            locked_until: None,
            mfa_pending: None,
            mfa_active: None,
            last_step: 0,
            version,
            ip,
        });
        self.w.tenants[t].users.push(u);
        self.emit(meta, events);
        u
    }

    /// A new user, created by the tenant's administrator; most get a password, the others sign
    /// in through another identity provider.
    pub fn hire(&mut self) -> bool {
        let Some(t) = self.w.pick_tenant(&mut self.rng) else {
            return false;
        };
        let with_password = self.rng.chance(0.92);
        let meta = self.admin_meta(t);
        self.create_user(t, with_password, meta);
        true
    }

    /// A user (not deleted) of an active tenant who is not an administrator.
    fn pick_member(&mut self, ok: impl Fn(&User) -> bool) -> Option<Ix> {
        let u = self
            .w
            .pick_user(&mut self.rng, |u| u.status != UserStatus::Deleted && ok(u))?;
        let t = self.w.users[u].tenant;
        (self.w.tenants[t].admin != Some(u)).then_some(u)
    }

    pub fn change_email(&mut self) -> bool {
        let Some(u) = self.pick_member(|_| true) else {
            return false;
        };
        let t = self.w.users[u].tenant;
        let old = self.w.users[u].email.clone();
        let local = old.split('@').next().unwrap_or("user").to_owned();
        let tenant = &mut self.w.tenants[t];
        tenant.counter += 1;
        let email = format!("{local}.{}@mail.{}", tenant.counter, tenant.domain);
        if !tenant.take("e", &email) {
            return false;
        }
        tenant.free("e", &old);
        let tenant_id = tenant.id;
        let user = &mut self.w.users[u];
        user.email = email.clone();
        let (id, stream) = (user.id, user_stream(user.id));
        let event = pending(
            stream.clone(),
            &mut user.version,
            &make::user_email_changed(id, tenant_id, &email),
        );
        self.out.release(&email_scope(tenant_id), &old, &stream);
        self.out.claim(&email_scope(tenant_id), &email, &stream);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    /// A new family name (or a display name where there was none).
    pub fn change_display_name(&mut self) -> bool {
        let Some(u) = self
            .w
            .pick_user(&mut self.rng, |u| u.status != UserStatus::Deleted)
        else {
            return false;
        };
        let person = Person {
            given: self.w.users[u].person.given,
            family: FAMILY[self.rng.below(FAMILY.len())],
        };
        let name = Some(person.display_name());
        let t = self.w.users[u].tenant;
        let tenant_id = self.w.tenants[t].id;
        let user = &mut self.w.users[u];
        if user.display_name == name {
            return false;
        }
        user.person = person;
        user.display_name = name.clone();
        let (id, stream) = (user.id, user_stream(user.id));
        let event = pending(
            stream,
            &mut user.version,
            &make::user_display_name_changed(id, tenant_id, name),
        );
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
        true
    }

    pub fn disable_user(&mut self) -> bool {
        let Some(u) = self.pick_member(|u| u.status == UserStatus::Active) else {
            return false;
        };
        self.set_status(u, UserStatus::Disabled);
        self.w.disabled.push(u);
        true
    }

    pub fn enable_user(&mut self) -> bool {
        let (users, tenants) = (&self.w.users, &self.w.tenants);
        let ok =
            |u: Ix| users[u].status == UserStatus::Disabled && tenants[users[u].tenant].active();
        let Some(u) = World::draw(&mut self.rng, &mut self.w.disabled, ok) else {
            return false;
        };
        self.set_status(u, UserStatus::Active);
        true
    }

    /// Deleting frees the username and email; memberships and assignments stay behind.
    pub fn delete_user(&mut self) -> bool {
        let Some(u) = self.pick_member(|_| true) else {
            return false;
        };
        let (t, username, email) = {
            let user = &self.w.users[u];
            (user.tenant, user.username.clone(), user.email.clone())
        };
        let tenant_id = self.w.tenants[t].id;
        self.w.tenants[t].free("u", &username);
        self.w.tenants[t].free("e", &email);
        let stream = user_stream(self.w.users[u].id);
        self.out
            .release(&username_scope(tenant_id), &username, &stream);
        self.out.release(&email_scope(tenant_id), &email, &stream);
        self.set_status(u, UserStatus::Deleted);
        true
    }

    fn set_status(&mut self, u: Ix, status: UserStatus) {
        let t = self.w.users[u].tenant;
        let tenant_id = self.w.tenants[t].id;
        let user = &mut self.w.users[u];
        user.status = status;
        let id = user.id;
        let event = match status {
            UserStatus::Active => make::user_enabled(id, tenant_id),
            UserStatus::Disabled => make::user_disabled(id, tenant_id),
            UserStatus::Deleted => make::user_deleted(id, tenant_id),
        };
        let event = pending(user_stream(id), &mut user.version, &event);
        let meta = self.admin_meta(t);
        self.emit(meta, vec![event]);
    }
}
