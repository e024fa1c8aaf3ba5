//! Whose deals a caller may see, from the people and their managers the store holds.

use std::collections::HashSet;

use engine::dataset::Dataset;

use crate::{Role, User};

/// The deals of a dataset a [`Scope`] may see, by owner symbol: checked per deal without a
/// string comparison.
#[derive(Debug, Clone)]
pub struct DealFilter {
    column: Option<usize>,
    syms: HashSet<engine::dataset::Sym>,
}

impl DealFilter {
    pub fn keeps(&self, deal: &engine::dataset::Deal) -> bool {
        self.column.is_some_and(|c| self.syms.contains(&deal.cats[c]))
    }
}

/// Whose deals a caller may see: a rep their own, a manager their team's and their own, an
/// admin the tenant's.
#[derive(Debug, Clone, PartialEq)]
pub enum Scope {
    All,
    Owners(HashSet<String>),
}

impl Scope {
    /// The scope of `user_id` acting as `role`, among `users`.
    pub fn for_user(users: &[User], user_id: &str, role: Role) -> Scope {
        if role == Role::Admin {
            return Scope::All;
        }
        let me = users.iter().find(|u| u.user_id == user_id);
        let mut owners: HashSet<String> = me.and_then(|u| u.crm_owner.clone()).into_iter().collect();
        if role == Role::Manager {
            // Everyone who reports to this manager, directly or through others.
            let mut frontier = vec![user_id.to_owned()];
            let mut seen: HashSet<String> = HashSet::new();
            while let Some(manager) = frontier.pop() {
                for u in users.iter().filter(|u| u.manager_id.as_deref() == Some(manager.as_str())) {
                    if seen.insert(u.user_id.clone()) {
                        owners.extend(u.crm_owner.clone());
                        frontier.push(u.user_id.clone());
                    }
                }
            }
        }
        Scope::Owners(owners)
    }

    /// Which of `dataset`'s deals this scope lets a card show (as similar deals, say): `None`
    /// when every deal.
    pub fn deal_filter(&self, dataset: &Dataset) -> Option<DealFilter> {
        let Scope::Owners(owners) = self else { return None };
        let column = dataset.schema.owner_column();
        let syms = column
            .map(|c| owners.iter().filter_map(|o| dataset.schema.categorical[c].vocab.lookup(o)).collect())
            .unwrap_or_default();
        Some(DealFilter { column, syms })
    }

    pub fn allows(&self, owner: Option<&str>) -> bool {
        match self {
            Scope::All => true,
            Scope::Owners(set) => owner.is_some_and(|o| set.contains(o)),
        }
    }

    pub fn owners(&self) -> Option<Vec<String>> {
        match self {
            Scope::All => None,
            Scope::Owners(set) => {
                let mut v: Vec<String> = set.iter().cloned().collect();
                v.sort();
                Some(v)
            }
        }
    }
}
