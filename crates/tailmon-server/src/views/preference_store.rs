//! Everybody's [`Preferences`], in a file of the data directory or in memory.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use tailmon_core::OrgId;

use crate::views::preferences::Preferences;
use crate::views::preferences_error::PreferencesError;

/// The file, in the data directory, that holds everybody's preferences.
pub const PREFERENCES_FILE: &str = "preferences.json";

/// Whose preferences: a signed-in user, a read token, or everybody in open
/// mode (`--auth none`), which has one shared set.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Owner {
    /// Open mode: one set for whoever comes.
    Open,
    /// A user, by name.
    User(String),
    /// A token, by id.
    Token(String),
}

/// The file's shape: organisation, then owner. A user keeps one set per
/// organisation they act in.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct PreferenceFile {
    version: u32,
    #[serde(default)]
    organisations: BTreeMap<OrgId, OrganisationPreferences>,
}

/// One organisation's preferences, by owner.
#[derive(Debug, Default, Clone, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct OrganisationPreferences {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    open: Option<Preferences>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    users: BTreeMap<String, Preferences>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    tokens: BTreeMap<String, Preferences>,
}

impl OrganisationPreferences {
    fn get(&self, owner: &Owner) -> Option<&Preferences> {
        match owner {
            Owner::Open => self.open.as_ref(),
            Owner::User(name) => self.users.get(name),
            Owner::Token(id) => self.tokens.get(id),
        }
    }

    /// Sets (`Some`) or removes (`None`) the owner's set; whether it changed.
    fn put(&mut self, owner: &Owner, prefs: Option<Preferences>) -> bool {
        let before = self.get(owner).cloned();
        match (owner, prefs.clone()) {
            (Owner::Open, p) => self.open = p,
            (Owner::User(name), Some(p)) => drop(self.users.insert(name.clone(), p)),
            (Owner::User(name), None) => drop(self.users.remove(name)),
            (Owner::Token(id), Some(p)) => drop(self.tokens.insert(id.clone(), p)),
            (Owner::Token(id), None) => drop(self.tokens.remove(id)),
        }
        before != prefs
    }
}

/// Everybody's preferences: kept in [`PREFERENCES_FILE`] of a data
/// directory (mode 0600, replaced atomically on every change), or only in
/// memory.
///
/// ```
/// use tailmon_server::views::{Owner, PreferenceStore, Preferences, Theme};
///
/// let store = PreferenceStore::in_memory();
/// let alice = Owner::User("alice".into());
/// let mut prefs = Preferences::default();
/// prefs.theme = Some(Theme::Dark);
/// store.set(&alice, prefs.clone())?;
/// assert_eq!(store.get(&alice), prefs);
/// assert_eq!(store.get(&Owner::User("bob".into())), Preferences::default());
/// # Ok::<(), tailmon_server::views::PreferencesError>(())
/// ```
#[derive(Debug)]
pub struct PreferenceStore {
    dir: Option<PathBuf>,
    current: Mutex<PreferenceFile>,
}

impl PreferenceStore {
    /// Preferences kept in memory only, lost at exit.
    pub fn in_memory() -> Self {
        Self {
            dir: None,
            current: Mutex::new(PreferenceFile::default()),
        }
    }

    /// The preferences of the data directory `dir` (created, 0700, if
    /// missing), in [`PREFERENCES_FILE`]; none yet if the file is missing.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self, PreferencesError> {
        let dir = dir.as_ref().to_path_buf();
        crate::private_dir::create(&dir).map_err(|source| PreferencesError::Io {
            path: dir.clone(),
            source,
        })?;
        let path = dir.join(PREFERENCES_FILE);
        let file = match std::fs::read(&path) {
            Ok(bytes) => {
                let corrupt = |message: String| PreferencesError::Corrupt {
                    path: path.clone(),
                    message,
                };
                let file: PreferenceFile =
                    serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
                if file.version != 1 {
                    return Err(corrupt(format!("unknown version {}", file.version)));
                }
                file
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => PreferenceFile::default(),
            Err(source) => return Err(PreferencesError::Io { path, source }),
        };
        Ok(Self {
            dir: Some(dir),
            current: Mutex::new(file),
        })
    }

    /// The file behind this store, if any.
    pub fn path(&self) -> Option<PathBuf> {
        self.dir.as_ref().map(|d| d.join(PREFERENCES_FILE))
    }

    /// What `owner` saved in the organisation `default`; see
    /// [`get_in`](Self::get_in).
    pub fn get(&self, owner: &Owner) -> Preferences {
        self.get_in(&OrgId::default(), owner)
    }

    /// What `owner` saved while acting in `org`; empty when nothing.
    pub fn get_in(&self, org: &OrgId, owner: &Owner) -> Preferences {
        let current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        current
            .organisations
            .get(org)
            .and_then(|o| o.get(owner))
            .cloned()
            .unwrap_or_default()
    }

    /// [`set_in`](Self::set_in) the organisation `default`.
    pub fn set(&self, owner: &Owner, prefs: Preferences) -> Result<(), PreferencesError> {
        self.set_in(&OrgId::default(), owner, prefs)
    }

    /// Replaces what `owner` saved while acting in `org` with `prefs`, once
    /// they pass [`Preferences::check`]; saved to the file before it
    /// returns. A refused value changes nothing.
    pub fn set_in(
        &self,
        org: &OrgId,
        owner: &Owner,
        prefs: Preferences,
    ) -> Result<(), PreferencesError> {
        prefs.check()?;
        self.change(|file| {
            file.organisations
                .entry(org.clone())
                .or_default()
                .put(owner, Some(prefs))
        })
    }

    /// Forgets what `owner` saved, in every organisation (a user removed,
    /// a token revoked).
    pub fn remove(&self, owner: &Owner) -> Result<(), PreferencesError> {
        self.change(|file| {
            let mut changed = false;
            for organisation in file.organisations.values_mut() {
                changed |= organisation.put(owner, None);
            }
            changed
        })
    }

    /// Forgets what anybody saved while acting in `org` (removed).
    pub fn remove_org(&self, org: &OrgId) -> Result<(), PreferencesError> {
        self.change(|file| file.organisations.remove(org).is_some())
    }

    /// Forgets the preferences of users and tokens for which `keep` says
    /// `false`: at start, those removed while the server was down.
    pub fn retain(&self, keep: impl Fn(&Owner) -> bool) -> Result<(), PreferencesError> {
        self.retain_in(|_, owner| keep(owner))
    }

    /// Forgets the preferences that users and tokens saved in an
    /// organisation for which `keep` says `false` (they left it, or it was
    /// removed, while the server was down). Open mode's set stays.
    pub fn retain_in(&self, keep: impl Fn(&OrgId, &Owner) -> bool) -> Result<(), PreferencesError> {
        self.change(|file| {
            let mut changed = false;
            for (org, organisation) in &mut file.organisations {
                let (users, tokens) = (organisation.users.len(), organisation.tokens.len());
                organisation
                    .users
                    .retain(|name, _| keep(org, &Owner::User(name.clone())));
                organisation
                    .tokens
                    .retain(|id, _| keep(org, &Owner::Token(id.clone())));
                changed |= users != organisation.users.len() || tokens != organisation.tokens.len();
            }
            changed
        })
    }

    /// Applies `edit` (which says whether it changed anything) and saves
    /// the result; on a failed save, the previous state stays.
    fn change(
        &self,
        edit: impl FnOnce(&mut PreferenceFile) -> bool,
    ) -> Result<(), PreferencesError> {
        let mut current = self.current.lock().unwrap_or_else(|p| p.into_inner());
        let mut next = current.clone();
        next.version = 1;
        if !edit(&mut next) {
            return Ok(());
        }
        if let Some(dir) = &self.dir {
            let path = dir.join(PREFERENCES_FILE);
            let json = serde_json::to_vec_pretty(&next).map_err(|e| PreferencesError::Corrupt {
                path: path.clone(),
                message: e.to_string(),
            })?;
            crate::private_dir::replace_file(dir, PREFERENCES_FILE, &json)
                .map_err(|source| PreferencesError::Io { path, source })?;
        }
        *current = next;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::views::preferences::{DeviceChart, FleetMetric, Theme};

    fn tempdir() -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "tailmon-prefs-{}-{}",
            std::process::id(),
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos())
        ));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    fn dark() -> Preferences {
        Preferences {
            theme: Some(Theme::Dark),
            fleet_metrics: Some(vec![FleetMetric::Disk, FleetMetric::Cpu]),
            device_charts: Some(vec![DeviceChart::Load]),
        }
    }

    #[test]
    fn saved_per_owner_kept_across_opens_and_private() {
        let dir = tempdir();
        let alice = Owner::User("alice".into());
        let token = Owner::Token("0123abcd".into());
        {
            let store = PreferenceStore::open(&dir).expect("open");
            store.set(&alice, dark()).expect("set");
            store
                .set(
                    &Owner::Open,
                    Preferences {
                        theme: Some(Theme::Light),
                        ..Preferences::default()
                    },
                )
                .expect("set");
            store.set(&token, Preferences::default()).expect("set");
        }
        let store = PreferenceStore::open(&dir).expect("reopen");
        assert_eq!(store.get(&alice), dark());
        assert_eq!(store.get(&Owner::Open).theme, Some(Theme::Light));
        assert_eq!(
            store.get(&Owner::User("bob".into())),
            Preferences::default()
        );
        let text = std::fs::read_to_string(dir.join(PREFERENCES_FILE)).expect("file");
        let json: serde_json::Value = serde_json::from_str(&text).expect("json");
        assert_eq!(json["version"], 1);
        assert_eq!(
            json["organisations"]["default"]["users"]["alice"]["theme"],
            "dark"
        );
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(dir.join(PREFERENCES_FILE))
                .expect("meta")
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o600);
        }

        store.remove(&alice).expect("remove");
        store
            .retain(|owner| *owner != token)
            .expect("forget revoked");
        let store = PreferenceStore::open(&dir).expect("reopen");
        assert_eq!(store.get(&alice), Preferences::default());
        assert!(
            std::fs::read_to_string(dir.join(PREFERENCES_FILE))
                .expect("file")
                .find("0123abcd")
                .is_none()
        );
        assert_eq!(store.get(&Owner::Open).theme, Some(Theme::Light), "kept");
        std::fs::remove_dir_all(&dir).expect("clean up");
    }

    #[test]
    fn each_organisation_keeps_its_own_choices() {
        let store = PreferenceStore::in_memory();
        let alice = Owner::User("alice".into());
        let acme = OrgId::new("acme").expect("name");
        store.set(&alice, dark()).expect("set");
        assert_eq!(store.get_in(&acme, &alice), Preferences::default());
        let light = Preferences {
            theme: Some(Theme::Light),
            ..Preferences::default()
        };
        store.set_in(&acme, &alice, light.clone()).expect("set");
        assert_eq!(store.get_in(&acme, &alice), light);
        assert_eq!(store.get(&alice), dark(), "default's untouched");
        store.remove_org(&acme).expect("remove");
        assert_eq!(store.get_in(&acme, &alice), Preferences::default());
        store.set_in(&acme, &alice, light.clone()).expect("set");
        // Alice left acme (while the server was down): only that set goes.
        store
            .retain_in(|org, _| *org != acme)
            .expect("forget those gone");
        assert_eq!(store.get_in(&acme, &alice), Preferences::default());
        assert_eq!(store.get(&alice), dark());
        store.set_in(&acme, &alice, light).expect("set");
        store.remove(&alice).expect("remove");
        assert_eq!(store.get_in(&acme, &alice), Preferences::default());
        assert_eq!(store.get(&alice), Preferences::default());
    }

    #[test]
    fn a_refused_value_changes_nothing() {
        let store = PreferenceStore::in_memory();
        let alice = Owner::User("alice".into());
        store.set(&alice, dark()).expect("set");
        let twice = Preferences {
            device_charts: Some(vec![DeviceChart::Cpu, DeviceChart::Cpu]),
            ..Preferences::default()
        };
        assert!(matches!(
            store.set(&alice, twice),
            Err(PreferencesError::Invalid {
                field: "device_charts",
                ..
            })
        ));
        assert_eq!(store.get(&alice), dark());
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_reset() {
        let dir = tempdir();
        std::fs::create_dir_all(&dir).expect("dir");
        std::fs::write(dir.join(PREFERENCES_FILE), b"{\"version\": 2}").expect("write");
        assert!(matches!(
            PreferenceStore::open(&dir),
            Err(PreferencesError::Corrupt { .. })
        ));
        std::fs::remove_dir_all(&dir).expect("clean up");
    }
}
