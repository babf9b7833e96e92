//! The loaded objects, with lookup helpers.

use std::collections::BTreeMap;

use crate::git::GitRepository;
use crate::image::{ImagePolicy, ImageRepository, ImageUpdateAutomation};
use crate::meta::ObjectRef;
use crate::pipeline::{Namespace, Pipeline};

/// Every supported object found under a root, in file order (sorted paths, then document order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectSet {
    /// `ImageRepository` objects.
    pub image_repositories: Vec<ImageRepository>,
    /// `ImagePolicy` objects.
    pub image_policies: Vec<ImagePolicy>,
    /// `ImageUpdateAutomation` objects.
    pub image_update_automations: Vec<ImageUpdateAutomation>,
    /// `GitRepository` objects.
    pub git_repositories: Vec<GitRepository>,
    /// `Namespace` objects.
    pub namespaces: Vec<Namespace>,
    /// Ferry `Pipeline` objects.
    pub pipelines: Vec<Pipeline>,
    /// For rendered sources: the Flux Kustomization (`namespace/name`) each object came from.
    /// Empty for plain-file loads.
    pub origins: BTreeMap<ObjectRef, String>,
}

impl ObjectSet {
    /// Total number of objects.
    pub fn len(&self) -> usize {
        self.image_repositories.len()
            + self.image_policies.len()
            + self.image_update_automations.len()
            + self.git_repositories.len()
            + self.namespaces.len()
            + self.pipelines.len()
    }

    /// True when nothing was loaded.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The ImageRepository `namespace/name`.
    /// The ImageRepository `policy` reads, when the set has it.
    pub fn repository_of(&self, policy: &ImagePolicy) -> Option<&ImageRepository> {
        let key = policy.repository_key();
        self.image_repository(&key.namespace, &key.name)
    }

    /// The keys of the image objects (the kinds Ferry reconciles).
    pub fn keys(&self) -> std::collections::BTreeSet<ferry_core::ObjectKey> {
        use ferry_core::{Kind, ObjectKey};
        let key = |kind, ns: &str, name: &str| ObjectKey::new(kind, ns, name);
        let repos = self.image_repositories.iter();
        let policies = self.image_policies.iter();
        let automations = self.image_update_automations.iter();
        repos
            .map(|o| key(Kind::ImageRepository, o.namespace(), o.name()))
            .chain(policies.map(|o| key(Kind::ImagePolicy, o.namespace(), o.name())))
            .chain(automations.map(|o| key(Kind::ImageUpdateAutomation, o.namespace(), o.name())))
            .collect()
    }

    pub fn image_repository(&self, namespace: &str, name: &str) -> Option<&ImageRepository> {
        self.image_repositories
            .iter()
            .find(|o| o.metadata.namespace == namespace && o.metadata.name == name)
    }

    /// The ImagePolicy `namespace/name`.
    pub fn image_policy(&self, namespace: &str, name: &str) -> Option<&ImagePolicy> {
        self.image_policies
            .iter()
            .find(|o| o.metadata.namespace == namespace && o.metadata.name == name)
    }

    /// All ImagePolicies in `namespace`, in load order.
    pub fn policies_in<'a>(&'a self, namespace: &'a str) -> impl Iterator<Item = &'a ImagePolicy> {
        self.image_policies
            .iter()
            .filter(move |o| o.metadata.namespace == namespace)
    }

    /// Labels of the declared Namespace `name` (including `kubernetes.io/metadata.name`),
    /// or `None` when no Namespace object was loaded for it.
    pub fn namespace_labels(&self, name: &str) -> Option<&BTreeMap<String, String>> {
        self.namespaces
            .iter()
            .find(|n| n.metadata.name == name)
            .map(|n| &n.metadata.labels)
    }

    /// The GitRepository `namespace/name`.
    pub fn git_repository(&self, namespace: &str, name: &str) -> Option<&GitRepository> {
        self.git_repositories
            .iter()
            .find(|o| o.metadata.namespace == namespace && o.metadata.name == name)
    }

    /// All ImageUpdateAutomations.
    pub fn automations(&self) -> &[ImageUpdateAutomation] {
        &self.image_update_automations
    }

    /// All Pipelines.
    pub fn pipelines(&self) -> &[Pipeline] {
        &self.pipelines
    }

    /// The Pipeline `namespace/name`.
    pub fn pipeline(&self, namespace: &str, name: &str) -> Option<&Pipeline> {
        self.pipelines
            .iter()
            .find(|o| o.metadata.namespace == namespace && o.metadata.name == name)
    }
}
