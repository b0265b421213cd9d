//! Operating system description.

use sysinfo::System;

/// The OS in the original Tailmon's style: `Ubuntu 22.04 (Kernel: 5.15.0)`.
pub(crate) fn describe() -> String {
    let name = System::name().unwrap_or_else(|_| std::env::consts::OS.to_owned());
    let mut text = match System::os_version() {
        Ok(version) => format!("{name} {version}"),
        Err(_) => name,
    };
    if let Ok(kernel) = System::kernel_version() {
        text.push_str(&format!(" (Kernel: {kernel})"));
    }
    // Keep it within the server's limit and free of control characters.
    text.retain(|c| !c.is_control());
    text.chars().take(tailmon_core::MAX_OS_INFO_LEN).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn shape_is_name_version_and_kernel() {
        let text = super::describe();
        assert!(!text.is_empty());
        if cfg!(target_os = "linux") {
            assert!(text.contains(" (Kernel: "), "{text}");
            assert!(text.ends_with(')'), "{text}");
        }
        assert!(!text.chars().any(char::is_control));
    }
}
