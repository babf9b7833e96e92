//! The dashboard's actions: a form checked into the request the CLI builds, then run through the
//! same library call (`--dry-run` for the confirmation page's preview).

use ferry_api::ObjectSet;
use ferry_engine::Engine;
use ferry_engine::promote::{ApproveRequest, Bump, PromoteRequest};
use ferry_engine::rollback::{HoldRequest, RollbackRequest, UnholdRequest};

/// One action as the forms send it (empty fields are absent).
#[derive(Debug, Clone, Default, serde::Deserialize)]
pub struct ActionForm {
    pub action: String,
    pub app: String,
    pub env: String,
    #[serde(default)]
    pub reason: String,
    /// promote `--tag` (the source tag), approve's tag.
    #[serde(default)]
    pub tag: String,
    /// rollback `--to`.
    #[serde(default)]
    pub to: String,
    /// rollback `--steps`.
    #[serde(default)]
    pub steps: String,
    #[serde(default)]
    pub csrf: String,
}

/// The checked action: what the CLI's arguments would have been.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Promote {
        tag: Option<String>,
    },
    Rollback {
        to: Option<String>,
        steps: Option<u32>,
    },
    Approve {
        tag: String,
    },
    Hold,
    Unhold,
}

fn field(v: &str) -> Option<String> {
    let v = v.trim();
    (!v.is_empty()).then(|| v.to_string())
}

impl ActionForm {
    /// The action, or why the form cannot be one (a field the action does not take, both `to`
    /// and `steps`, a `steps` that is not a whole number ≥ 1, approve without a tag). Tags are
    /// checked by the engine, as for the CLI.
    pub fn action(&self) -> Result<Action, String> {
        let (tag, to, steps) = (field(&self.tag), field(&self.to), field(&self.steps));
        let takes = |allowed: &[&str]| -> Result<(), String> {
            let given = [("tag", &tag), ("to", &to), ("steps", &steps)];
            match given
                .iter()
                .find(|(n, v)| v.is_some() && !allowed.contains(n))
            {
                Some((n, _)) => Err(format!("{} takes no `{n}` field", self.action)),
                None => Ok(()),
            }
        };
        match self.action.as_str() {
            "promote" => takes(&["tag"]).map(|()| Action::Promote { tag }),
            "rollback" => {
                takes(&["to", "steps"])?;
                if to.is_some() && steps.is_some() {
                    return Err("rollback takes `to` or `steps`, not both".into());
                }
                let steps = match steps {
                    None => None,
                    Some(s) => {
                        Some(s.parse::<u32>().ok().filter(|n| *n >= 1).ok_or_else(|| {
                            format!("steps: expected a whole number of at least 1, got {s:?}")
                        })?)
                    }
                };
                Ok(Action::Rollback { to, steps })
            }
            "approve" => {
                takes(&["tag"])?;
                let tag = tag.ok_or("approve needs the `tag` to approve")?;
                Ok(Action::Approve { tag })
            }
            "hold" => takes(&[]).map(|()| Action::Hold),
            "unhold" => takes(&[]).map(|()| Action::Unhold),
            other => Err(format!(
                "unknown action {other:?} (promote, rollback, approve, hold or unhold)"
            )),
        }
    }
}

/// Runs an action through the same library calls as the CLI; JSON of the report (the CLI's
/// `-o json`), or the error. `dry_run` is the CLI's `--dry-run` (approve, hold and unhold have
/// none: their preview says what will be written).
pub async fn execute(
    engine: &Engine,
    objects: &ObjectSet,
    f: &ActionForm,
    by: &str,
    dry_run: bool,
) -> Result<String, String> {
    let action = f.action()?;
    let json = |v: serde_json::Result<String>| v.map_err(|e| e.to_string());
    let failed = |e: &dyn std::fmt::Display| e.to_string();
    let (app, env, by) = (f.app.clone(), f.env.clone(), by.to_string());
    match action {
        Action::Promote { tag } => {
            let req = promote_request(&app, &env, tag, &by, dry_run);
            let r = ferry_engine::promote::promote(engine, objects, None, &req)
                .await
                .map_err(|e| failed(&e))?;
            json(serde_json::to_string_pretty(&r))
        }
        Action::Rollback { to, steps } => {
            let req = RollbackRequest {
                env,
                app,
                to,
                steps,
                reason: f.reason.clone(),
                by,
                dry_run,
                ..Default::default()
            };
            let r = engine
                .rollback(objects, &req)
                .await
                .map_err(|e| failed(&e))?;
            json(serde_json::to_string_pretty(&r))
        }
        Action::Approve { tag } if dry_run => Ok(format!(
            "approve {app} {tag} for {env} (by {by}): one commit writing releases/{app}/approvals/{env}/{tag}.yaml"
        )),
        Action::Approve { tag } => {
            let req = ApproveRequest { app, env, tag, by };
            let r = ferry_engine::promote::approve(engine, objects, None, &req)
                .await
                .map_err(|e| failed(&e))?;
            json(serde_json::to_string_pretty(&r))
        }
        Action::Hold | Action::Unhold if dry_run => Ok(format!(
            "{} {app} in {env} (by {by}{}): one commit to .ferry/holds.yaml",
            f.action,
            if f.reason.is_empty() {
                String::new()
            } else {
                format!(", reason {:?}", f.reason)
            }
        )),
        Action::Hold => {
            let req = HoldRequest {
                env,
                app,
                reason: f.reason.clone(),
                by,
                repo: None,
            };
            let r = engine.hold(objects, &req).await.map_err(|e| failed(&e))?;
            json(serde_json::to_string_pretty(&r))
        }
        Action::Unhold => {
            let req = UnholdRequest {
                env,
                app,
                reason: f.reason.clone(),
                by,
                ..Default::default()
            };
            let r = engine.unhold(objects, &req).await.map_err(|e| failed(&e))?;
            json(serde_json::to_string_pretty(&r))
        }
    }
}

/// `ferry promote APP --to ENV [--tag TAG] --by BY [--dry-run]`.
pub fn promote_request(
    app: &str,
    to: &str,
    tag: Option<String>,
    by: &str,
    dry_run: bool,
) -> PromoteRequest {
    PromoteRequest {
        app: app.to_string(),
        to: to.to_string(),
        from: None,
        tag,
        dry_run,
        force: false,
        bump: Bump::Patch,
        by: by.to_string(),
        timestamp: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn form(action: &str, tag: &str, to: &str, steps: &str) -> ActionForm {
        ActionForm {
            action: action.into(),
            app: "backend".into(),
            env: "staging".into(),
            tag: tag.into(),
            to: to.into(),
            steps: steps.into(),
            ..Default::default()
        }
    }

    #[test]
    fn fields_become_the_cli_arguments() {
        assert_eq!(
            form("promote", " v1.2.3 ", "", "").action(),
            Ok(Action::Promote {
                tag: Some("v1.2.3".into())
            })
        );
        assert_eq!(
            form("promote", "", "", "").action(),
            Ok(Action::Promote { tag: None })
        );
        assert_eq!(
            form("rollback", "", "v1", "").action(),
            Ok(Action::Rollback {
                to: Some("v1".into()),
                steps: None
            })
        );
        assert_eq!(
            form("rollback", "", "", "2").action(),
            Ok(Action::Rollback {
                to: None,
                steps: Some(2)
            })
        );
        assert_eq!(
            form("approve", "v1", "", "").action(),
            Ok(Action::Approve { tag: "v1".into() })
        );
    }

    #[test]
    fn bad_fields_are_refused_with_what_is_wrong() {
        let err = |f: ActionForm| f.action().unwrap_err();
        assert_eq!(
            err(form("rollback", "", "v1", "2")),
            "rollback takes `to` or `steps`, not both"
        );
        assert_eq!(
            err(form("rollback", "", "", "0")),
            "steps: expected a whole number of at least 1, got \"0\""
        );
        assert_eq!(
            err(form("rollback", "", "", "two")),
            "steps: expected a whole number of at least 1, got \"two\""
        );
        assert_eq!(
            err(form("rollback", "v1", "", "")),
            "rollback takes no `tag` field"
        );
        assert_eq!(
            err(form("promote", "", "", "1")),
            "promote takes no `steps` field"
        );
        assert_eq!(err(form("hold", "", "v1", "")), "hold takes no `to` field");
        assert_eq!(
            err(form("approve", "", "", "")),
            "approve needs the `tag` to approve"
        );
        assert!(err(form("delete", "", "", "")).starts_with("unknown action \"delete\""));
    }
}
