//! The schedule's decisions, with times given (no clock, no API).

use super::*;

const OBJECTS: &str = "\
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web, namespace: apps}
spec: {image: 127.0.0.1:5000/web, interval: 1m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: api, namespace: apps}
spec: {image: 127.0.0.1:5000/api, interval: 10m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: web, namespace: apps, labels: {app: web}}
spec:
  imageRepositoryRef: {name: web}
  policy: {semver: {range: '>=1.0.0'}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: api, namespace: apps, labels: {app: api}}
spec:
  imageRepositoryRef: {name: api}
  policy: {semver: {range: '>=1.0.0'}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: web, namespace: apps}
spec:
  interval: 30m
  sourceRef: {kind: GitRepository, name: flux-system, namespace: flux-system}
  git:
    commit:
      author: {name: bot, email: bot@example.com}
  policySelector: {matchLabels: {app: web}}
";

fn set() -> ObjectSet {
    ferry_api::load_str("objects.yaml", OBJECTS, &ferry_api::Vars::new()).unwrap()
}

/// The cluster's view of every object of `set`, at `generation`, with `requested` as the
/// `requestedAt` annotation of the web ImageRepository.
fn listed(set: &ObjectSet, generation: i64, requested: Option<&str>) -> Listed {
    let mut listed = Listed::default();
    for key in set.keys() {
        let mut annotations = serde_json::Map::new();
        if let (Some(at), true) = (requested, key == web_repo()) {
            annotations.insert(crate::REQUESTED_AT.into(), at.into());
        }
        let obj: DynamicObject = serde_json::from_value(serde_json::json!({
            "apiVersion": "image.toolkit.fluxcd.io/v1",
            "kind": key.kind.as_str(),
            "metadata": {
                "name": key.name, "namespace": key.namespace,
                "generation": generation, "annotations": annotations,
            },
        }))
        .unwrap();
        listed.objects.insert(key, obj);
    }
    listed
}

fn key(kind: Kind, name: &str) -> ObjectKey {
    ObjectKey::new(kind, "apps", name)
}

fn web_repo() -> ObjectKey {
    key(Kind::ImageRepository, "web")
}

fn ok(key: &ObjectKey) -> ObjectOutcome {
    outcome(key, true)
}

fn outcome(key: &ObjectKey, ready: bool) -> ObjectOutcome {
    ObjectOutcome {
        kind: key.kind,
        namespace: key.namespace.clone(),
        name: key.name.clone(),
        ready,
        suspended: false,
        reason: String::new(),
        message: String::new(),
    }
}

/// A schedule where everything ran successfully at `at`.
fn all_ran(set: &ObjectSet, listed: &Listed, at: Instant) -> Schedule {
    let mut schedule = Schedule::default();
    let due = schedule.due(at, listed, set, &Requested::default());
    let outcomes: Vec<_> = due.iter().map(ok).collect();
    schedule.record(at, &due, listed, &outcomes);
    schedule
}

#[test]
fn everything_is_due_on_the_first_pass_and_nothing_right_after() {
    let (set, t0) = (set(), Instant::now());
    let listed = listed(&set, 1, None);
    let schedule = Schedule::default();
    assert_eq!(
        schedule.due(t0, &listed, &set, &Requested::default()),
        set.keys()
    );
    let schedule = all_ran(&set, &listed, t0);
    assert!(
        schedule
            .due(
                t0 + Duration::from_secs(1),
                &listed,
                &set,
                &Requested::default()
            )
            .is_empty()
    );
    // The web repository (1m) is next; policies without digest reflection have no timer.
    assert_eq!(schedule.next_due(t0, &set), Duration::from_secs(60));
}

#[test]
fn an_interval_makes_the_repository_its_policy_and_automation_due_and_nothing_else() {
    let (set, t0) = (set(), Instant::now());
    let listed = listed(&set, 1, None);
    let schedule = all_ran(&set, &listed, t0);
    let due = schedule.due(
        t0 + Duration::from_secs(61),
        &listed,
        &set,
        &Requested::default(),
    );
    let want: BTreeSet<_> = [
        web_repo(),
        key(Kind::ImagePolicy, "web"),
        key(Kind::ImageUpdateAutomation, "web"),
    ]
    .into_iter()
    .collect();
    assert_eq!(due, want, "the api repository (10m) is not due");
}

#[test]
fn requested_at_or_a_new_generation_makes_an_object_due_at_once() {
    let (set, t0) = (set(), Instant::now());
    let schedule = all_ran(&set, &listed(&set, 1, None), t0);
    let soon = t0 + Duration::from_secs(1);
    let requested = listed(&set, 1, Some("2026-12-05T13:00:00Z"));
    let due = schedule.due(soon, &requested, &set, &Requested::default());
    assert!(due.contains(&web_repo()), "{due:?}");
    assert!(!due.contains(&key(Kind::ImageRepository, "api")), "{due:?}");
    let edited = listed(&set, 2, None);
    assert_eq!(
        schedule.due(soon, &edited, &set, &Requested::default()),
        set.keys()
    );
}

#[test]
fn a_webhook_names_a_repository_and_a_git_push_asks_for_all() {
    let (set, t0) = (set(), Instant::now());
    let listed = listed(&set, 1, None);
    let schedule = all_ran(&set, &listed, t0);
    let soon = t0 + Duration::from_secs(1);
    let requests = Requests::default();
    requests.add([key(Kind::ImageRepository, "api")]);
    let due = schedule.due(soon, &listed, &set, &requests.take());
    let want: BTreeSet<_> = [
        key(Kind::ImageRepository, "api"),
        key(Kind::ImagePolicy, "api"),
    ]
    .into_iter()
    .collect();
    assert_eq!(due, want, "no automation selects the api policy");
    assert!(requests.take().keys.is_empty(), "taken once");
    requests.all();
    assert_eq!(
        schedule.due(soon, &listed, &set, &requests.take()),
        set.keys()
    );
}

#[test]
fn a_failure_is_retried_with_backoff_capped_by_the_interval() {
    let (set, t0) = (set(), Instant::now());
    let listed = listed(&set, 1, None);
    let mut schedule = all_ran(&set, &listed, t0);
    let due: BTreeSet<_> = [web_repo()].into_iter().collect();
    schedule.record(t0, &due, &listed, &[outcome(&web_repo(), false)]);
    assert_eq!(schedule.failing(), (1, 5));
    assert_eq!(schedule.next_due(t0, &set), backoff(1));
    let retry = t0 + backoff(1);
    assert!(
        schedule
            .due(retry, &listed, &set, &Requested::default())
            .contains(&web_repo())
    );
    for _ in 0..20 {
        schedule.record(t0, &due, &listed, &[outcome(&web_repo(), false)]);
    }
    assert_eq!(
        schedule.next_due(t0, &set),
        Duration::from_secs(60),
        "capped by the 1m interval"
    );
    schedule.record(t0, &due, &listed, &[ok(&web_repo())]);
    assert_eq!(schedule.failing(), (0, 5));
}

#[test]
fn a_changed_git_repository_makes_its_automations_due() {
    let (set, t0) = (set(), Instant::now());
    let mut listed = listed(&set, 1, None);
    let source = ObjectKey::new(Kind::GitRepository, "flux-system", "flux-system");
    let git = |generation: i64| -> DynamicObject {
        serde_json::from_value(serde_json::json!({
            "apiVersion": "source.toolkit.fluxcd.io/v1", "kind": "GitRepository",
            "metadata": {"name": "flux-system", "namespace": "flux-system", "generation": generation},
        }))
        .unwrap()
    };
    listed.objects.insert(source.clone(), git(1));
    let schedule = all_ran(&set, &listed, t0);
    let soon = t0 + Duration::from_secs(1);
    assert!(
        schedule
            .due(soon, &listed, &set, &Requested::default())
            .is_empty()
    );
    listed.objects.insert(source, git(2));
    let due = schedule.due(soon, &listed, &set, &Requested::default());
    let want: BTreeSet<_> = [key(Kind::ImageUpdateAutomation, "web")]
        .into_iter()
        .collect();
    assert_eq!(due, want);
}
