//! Checking users (profile and credentials, with the session a login starts), groups,
//! assignments and sessions.

use charter_events::assignment::{AssignmentEvent, SubjectType};
use charter_events::group::GroupEvent;
use charter_events::session::{SessionEndReason, SessionEvent};
use charter_events::streams::stream_id;
use charter_events::user::{LoginFailure, SecondFactor, UserEvent};
use charter_events::{DomainEvent, RecordedEvent};
use uuid::Uuid;

use super::{decided, decode, valid, Checked, LogChecker};
use charter::command::assignment::{AssignmentHandler, AssignmentRequest};
use charter::command::group::{GroupHandler, GroupRequest};
use charter::command::user::UserHandler;
use charter::command::CommandHandler;
use charter::domain::assignment::{AssignmentAction, AssignmentCommand, RoleFacts};
use charter::domain::delegation::Authority;
use charter::domain::group::{GroupAction, GroupCommand};
use charter::domain::session::{Holder, Session, SessionCommand};
use charter::domain::user::{
    LockoutPolicy, LoginAttempt, Reauth, SecondFactorProof, UserAction, UserCommand, UserState,
    UserStatus,
};
use charter::domain::validate;

fn policy() -> LockoutPolicy {
    let auth = charter::config::Config::default().auth;
    LockoutPolicy {
        threshold: auth.lockout_threshold.max(1),
        duration: chrono::Duration::seconds(auth.lockout_duration_s as i64),
    }
}

/// The login attempt that ends in `event` against user `u` (what the caller proved).
fn attempt(u: &UserState, e: &RecordedEvent, event: &UserEvent) -> Result<LoginAttempt, String> {
    let current = u.password_hash.clone();
    let active = u.mfa.active_secret.clone().unwrap_or_default();
    let (session_id, password_matched, second_factor) = match event {
        UserEvent::LoginSucceeded(ok) => {
            let proof = match ok.second_factor {
                SecondFactor::None => SecondFactorProof::None,
                SecondFactor::Totp => SecondFactorProof::Totp {
                    secret: active,
                    step: ok.totp_step,
                },
                SecondFactor::RecoveryCode => {
                    let slot = ok
                        .recovery_code
                        .and_then(|i| u.mfa.recovery_codes.get(i as usize).cloned());
                    let digest = slot.flatten().ok_or("an unknown or used recovery code")?;
                    SecondFactorProof::RecoveryCode { digest }
                }
            };
            (ok.session_id, current, proof)
        }
        UserEvent::LoginFailed(f) => match f.reason {
            LoginFailure::MissingSecondFactor => (Uuid::nil(), current, SecondFactorProof::None),
            LoginFailure::BadSecondFactor => (
                Uuid::nil(),
                current,
                SecondFactorProof::Totp {
                    secret: active,
                    step: None,
                },
            ),
            _ => (Uuid::nil(), None, SecondFactorProof::None),
        },
        _ => return Err("not a login".into()),
    };
    Ok(LoginAttempt {
        now: e.recorded_at,
        session_id,
        password_matched,
        second_factor,
        policy: policy(),
    })
}

impl LogChecker {
    pub(super) fn user(&mut self, events: &[RecordedEvent]) -> Checked {
        let n = events
            .iter()
            .take_while(|e| e.stream_id == events[0].stream_id)
            .count();
        let (own, started) = events.split_at(n);
        let recorded: Vec<UserEvent> = decode(own, |e: &UserEvent| {
            stream_id(UserEvent::STREAM_TYPE, e.user_id())
        })?;
        let (tenant_id, user_id) = (own[0].tenant_id, recorded[0].user_id());
        let state = self.users.get(&user_id).cloned().unwrap_or_default();
        let current = state.0.clone().filter(|u| u.tenant_id == tenant_id);
        let reauth = |u: &Option<UserState>| Reauth {
            now: own[0].recorded_at,
            matched: u.as_ref().and_then(|u| u.password_hash.clone()),
            policy: policy(),
        };
        let action = match &recorded[..] {
            [UserEvent::Created(c), rest @ ..] if rest.len() <= 1 => {
                valid(validate::username, &c.username)?;
                valid(validate::email, &c.email)?;
                for name in [&c.display_name, &c.given_name, &c.family_name]
                    .into_iter()
                    .flatten()
                {
                    valid(validate::name, name)?;
                }
                let password_hash = match rest {
                    [UserEvent::PasswordSet(p)] => Some(p.password_hash.clone()),
                    _ => None,
                };
                UserAction::Create {
                    user_id,
                    username: c.username.clone(),
                    email: c.email.clone(),
                    display_name: c.display_name.clone(),
                    given_name: c.given_name.clone(),
                    family_name: c.family_name.clone(),
                    password_hash,
                }
            }
            [UserEvent::EmailChanged(m), rest @ ..] => {
                valid(validate::email, &m.email)?;
                let display_name = match rest {
                    [UserEvent::DisplayNameChanged(d)] => Some(d.display_name.clone()),
                    _ => None,
                };
                UserAction::Update {
                    email: Some(m.email.clone()),
                    display_name,
                }
            }
            [UserEvent::DisplayNameChanged(d)] => {
                if let Some(name) = &d.display_name {
                    valid(validate::name, name)?;
                }
                UserAction::Update {
                    email: None,
                    display_name: Some(d.display_name.clone()),
                }
            }
            [UserEvent::Disabled(_)] => UserAction::Disable,
            [UserEvent::Enabled(_)] => UserAction::Enable,
            [UserEvent::Deleted(_)] => UserAction::Delete,
            [login @ (UserEvent::LoginSucceeded(_) | UserEvent::LoginFailed(_)), ..] => {
                let u = current.as_ref().ok_or("a login of an unknown user")?;
                UserAction::Login(attempt(u, &own[0], login)?)
            }
            [UserEvent::AccountUnlocked(_)] => UserAction::Unlock {
                now: own[0].recorded_at,
            },
            [UserEvent::SessionsRevoked(_)] => UserAction::RevokeSessions,
            [UserEvent::PasswordSet(p), UserEvent::SessionsRevoked(_)] => {
                UserAction::ChangePassword {
                    proof: reauth(&current),
                    new_hash: p.password_hash.clone(),
                }
            }
            [UserEvent::MfaEnrolled(m)] => UserAction::EnrollMfa {
                proof: reauth(&current),
                sealed_secret: m.sealed_secret.clone(),
            },
            [UserEvent::MfaActivated(m)] => {
                let pending = current
                    .as_ref()
                    .and_then(|u| u.mfa.pending_secret.clone())
                    .unwrap_or_default();
                UserAction::ActivateMfa {
                    proof: SecondFactorProof::Totp {
                        secret: pending,
                        step: Some(m.totp_step),
                    },
                    recovery_code_hashes: m.recovery_code_hashes.clone(),
                }
            }
            [UserEvent::MfaDisabled(_)] => UserAction::DisableMfa {
                proof: reauth(&current),
            },
            [UserEvent::MfaReset(_)] => UserAction::ResetMfa {
                authority: Authority::Platform,
                holds: Default::default(),
            },
            [UserEvent::PlatformAccessGranted(g)] => UserAction::GrantPlatformAccess {
                permissions: g.permissions.clone(),
            },
            _ => return Err("not the events of one user command".into()),
        };
        let command = UserCommand {
            tenant_id,
            tenant_status: self.tenant_status(tenant_id),
            action,
        };
        let after = decided(&state, &command, &recorded)?;
        let handler = UserHandler {
            tenant_id,
            user_id,
            action: command.action,
        };
        self.claim(&own[0].stream_id, handler.claims(&state, &recorded))?;
        match (&recorded[0], started) {
            (UserEvent::LoginSucceeded(ok), [e]) => {
                let account_version = current.map_or(0, |u| u.account_version);
                self.session_started(e, ok.session_id, user_id, account_version)?
            }
            (_, []) => {}
            _ => return Err("a user command wrote to other streams".into()),
        }
        self.users.insert(user_id, after);
        Ok(())
    }

    /// The session a successful login starts, in the same command.
    fn session_started(
        &mut self,
        e: &RecordedEvent,
        session_id: Uuid,
        user_id: Uuid,
        account_version: i64,
    ) -> Checked {
        let recorded: Vec<SessionEvent> = decode(std::slice::from_ref(e), |_: &SessionEvent| {
            stream_id(SessionEvent::STREAM_TYPE, session_id)
        })?;
        let [SessionEvent::Started(s)] = &recorded[..] else {
            return Err("a login is followed by session.started".into());
        };
        if s.session_id != session_id
            || s.user_id != user_id
            || s.account_version != account_version
        {
            return Err("the session does not match its login".into());
        }
        if let Some(w) = s
            .workspace_id
            .filter(|w| !self.workspace_live(*w, s.tenant_id))
        {
            return Err(format!(
                "a session scoped to {w}, not a live workspace of the tenant"
            ));
        }
        let after = decided(
            &Session::default(),
            &SessionCommand::Start(s.clone()),
            &recorded,
        )?;
        self.sessions.insert(session_id, after);
        Ok(())
    }

    pub(super) fn group(&mut self, events: &[RecordedEvent]) -> Checked {
        let recorded: Vec<GroupEvent> = decode(events, |e: &GroupEvent| {
            stream_id(GroupEvent::STREAM_TYPE, group_id(e))
        })?;
        let (tenant_id, group_id) = (events[0].tenant_id, group_id(&recorded[0]));
        let action = match &recorded[..] {
            [GroupEvent::Created(c)] => {
                valid(validate::name, &c.name)?;
                GroupAction::Create {
                    group_id,
                    name: c.name.clone(),
                }
            }
            // The generator seeds as Charter itself, which the delegation rule exempts: what
            // the group grants does not matter to the decision.
            [GroupEvent::MemberAdded(m)] => GroupAction::AddMember {
                user_id: m.user_id,
                user: (self.users.get(&m.user_id).and_then(|u| u.0.as_ref()))
                    .map(|u| (u.tenant_id, u.status)),
                confers: Default::default(),
            },
            [GroupEvent::MemberRemoved(m)] => GroupAction::RemoveMember { user_id: m.user_id },
            [GroupEvent::Deleted(_)] => GroupAction::Delete,
            _ => return Err("not the events of one group command".into()),
        };
        let command = GroupCommand {
            tenant_id,
            tenant_status: self.tenant_status(tenant_id),
            authority: Authority::Platform,
            action,
        };
        let state = self.groups.get(&group_id).cloned().unwrap_or_default();
        let after = decided(&state, &command, &recorded)?;
        let handler = GroupHandler {
            tenant_id,
            group_id,
            authority: Authority::Platform,
            request: GroupRequest::Delete,
        };
        self.claim(&events[0].stream_id, handler.claims(&state, &recorded))?;
        self.groups.insert(group_id, after);
        Ok(())
    }

    pub(super) fn assignment(&mut self, events: &[RecordedEvent]) -> Checked {
        let recorded: Vec<AssignmentEvent> = decode(events, |e: &AssignmentEvent| {
            stream_id(AssignmentEvent::STREAM_TYPE, assignment_id(e))
        })?;
        let (tenant_id, assignment_id) = (events[0].tenant_id, assignment_id(&recorded[0]));
        let action = match &recorded[..] {
            [AssignmentEvent::Created(c)] => {
                let role =
                    (self.roles.get(&c.role_id).and_then(|r| r.0.as_ref())).map(|r| RoleFacts {
                        tenant_id: r.tenant_id,
                        workspace_id: r.workspace_id,
                        live: !r.deleted
                            && r.workspace_id
                                .is_none_or(|w| self.workspace_live(w, r.tenant_id)),
                        permissions: r.permissions.clone(),
                    });
                let subject_tenant = match c.subject_type {
                    SubjectType::User => (self.users.get(&c.subject_id).and_then(|u| u.0.as_ref()))
                        .filter(|u| u.status != UserStatus::Deleted)
                        .map(|u| u.tenant_id),
                    SubjectType::Group => {
                        (self.groups.get(&c.subject_id).and_then(|g| g.0.as_ref()))
                            .filter(|g| !g.deleted)
                            .map(|g| g.tenant_id)
                    }
                    // Service accounts are not followed here.
                    SubjectType::ServiceAccount => Some(tenant_id),
                };
                AssignmentAction::Create {
                    assignment_id,
                    role_id: c.role_id,
                    role,
                    subject_type: c.subject_type,
                    subject_id: c.subject_id,
                    subject_tenant,
                    workspace: c
                        .workspace_id
                        .map(|w| (w, self.workspace_live(w, tenant_id))),
                }
            }
            [AssignmentEvent::Deleted(_)] => AssignmentAction::Delete,
            _ => return Err("not the events of one assignment command".into()),
        };
        let command = AssignmentCommand {
            tenant_id,
            tenant_status: self.tenant_status(tenant_id),
            authority: Authority::Platform,
            action,
        };
        let state = self
            .assignments
            .get(&assignment_id)
            .cloned()
            .unwrap_or_default();
        let after = decided(&state, &command, &recorded)?;
        let handler = AssignmentHandler {
            tenant_id,
            assignment_id,
            authority: Authority::Platform,
            request: AssignmentRequest::Delete,
        };
        self.claim(&events[0].stream_id, handler.claims(&state, &recorded))?;
        self.assignments.insert(assignment_id, after);
        Ok(())
    }

    /// Refresh-token rotation and logout (a session starts only with a login).
    pub(super) fn session(&mut self, events: &[RecordedEvent]) -> Checked {
        let session_id: Uuid = (events[0].stream_id.strip_prefix("session-"))
            .and_then(|id| id.parse().ok())
            .ok_or("a session stream without a session id")?;
        let recorded: Vec<SessionEvent> = decode(events, |_: &SessionEvent| {
            stream_id(SessionEvent::STREAM_TYPE, session_id)
        })?;
        let state = self.sessions.get(&session_id).cloned().unwrap_or_default();
        let s = state.0.as_ref().ok_or("a session that never started")?;
        let user = self.users.get(&s.user_id).and_then(|u| u.0.as_ref());
        let holder = Holder {
            active: user.is_some_and(|u| u.status == UserStatus::Active),
            account_version: user.map_or(i64::MAX, |u| u.account_version),
        };
        let now = events[0].recorded_at;
        let command = match &recorded[..] {
            [SessionEvent::Refreshed(r)] => SessionCommand::Refresh {
                presented_hash: s.current_hash.clone(),
                new_hash: r.refresh_token_hash.clone(),
                now,
                holder,
            },
            [SessionEvent::Ended(e)] if e.reason == SessionEndReason::Logout => {
                SessionCommand::End { user_id: e.user_id }
            }
            [SessionEvent::Ended(_)] => SessionCommand::Refresh {
                presented_hash: s
                    .superseded
                    .first()
                    .cloned()
                    .ok_or("no superseded token to reuse")?,
                new_hash: String::new(),
                now,
                holder,
            },
            _ => return Err("not the events of one session command".into()),
        };
        let after = decided(&state, &command, &recorded)?;
        self.sessions.insert(session_id, after);
        Ok(())
    }
}

fn group_id(e: &GroupEvent) -> Uuid {
    match e {
        GroupEvent::Created(c) => c.group_id,
        GroupEvent::MemberAdded(m) => m.group_id,
        GroupEvent::MemberRemoved(m) => m.group_id,
        GroupEvent::Deleted(d) => d.group_id,
    }
}

fn assignment_id(e: &AssignmentEvent) -> Uuid {
    match e {
        AssignmentEvent::Created(c) => c.assignment_id,
        AssignmentEvent::Deleted(d) => d.assignment_id,
    }
}
