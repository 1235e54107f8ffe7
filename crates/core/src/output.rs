//! Output files: default names, the never-overwrite rule, and write-to-temporary-then-rename.
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use stylize_media::VideoCodec;

/// Containers we write; anything else falls back to .mp4 for default names.
pub const OUTPUT_CONTAINERS: &[&str] = &["mp4", "mkv", "mov"];

/// Marks default output names (`clip.styled.mp4`), so a folder re-run skips them.
pub const DEFAULT_SUFFIX: &str = ".styled.";

/// Marks the temporaries written beside an output (see [`work_name`]).
pub const TEMP_MARK: &str = ".stylize-tmp";

/// What a hidden working name beside an output holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WorkKind {
    /// A file being written, renamed into place when complete.
    Temp,
    /// The cloud coordinator's folder of downloaded styled frames.
    Frames,
}

/// The hidden working name beside `final_path` for this process:
/// `.NAME.stylize-tmp-PID[.EXT]` or `.NAME.stylize-frames-PID`. The process id lets
/// [`remove_abandoned_temps`] tell a killed run's leftovers from a live one's.
pub fn work_name(final_path: &Path, kind: WorkKind, ext: Option<&str>) -> PathBuf {
    let name = final_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let kind = match kind {
        WorkKind::Temp => "tmp",
        WorkKind::Frames => "frames",
    };
    let ext = ext.map(|e| format!(".{e}")).unwrap_or_default();
    final_path.with_file_name(format!(
        ".{name}.stylize-{kind}-{}{ext}",
        std::process::id()
    ))
}

/// Where one input's output goes, decided and checked before any work starts.
#[derive(Debug, Clone)]
pub struct OutputPlan {
    pub final_path: PathBuf,
    pub overwrite: bool,
    /// What the video is encoded with: the container must hold it.
    pub codec: VideoCodec,
}

impl OutputPlan {
    /// `claimed` holds outputs already planned in this run, so two inputs never write the same file.
    pub fn new(
        codec: VideoCodec,
        input: &Path,
        output: Option<&Path>,
        out_dir: Option<&Path>,
        overwrite: bool,
        claimed: &[PathBuf],
    ) -> Result<Self> {
        let final_path = match output {
            Some(path) => path.to_path_buf(),
            None => {
                let dir = match out_dir {
                    Some(dir) => dir.to_path_buf(),
                    None => input.parent().map(Path::to_path_buf).unwrap_or_default(),
                };
                dir.join(default_name(input, codec))
            }
        };
        let ext = extension_of(&final_path);
        if !OUTPUT_CONTAINERS.contains(&ext.as_str()) {
            bail!(
                "{}: unsupported output container {:?} (use .mp4, .mkv or .mov)",
                final_path.display(),
                ext
            );
        }
        if let Some(why) = codec.refuse_container(&ext) {
            bail!("{}: {why}", final_path.display());
        }
        if final_path.is_dir() {
            bail!(
                "{}: is a folder; give a file name for the output",
                final_path.display()
            );
        }
        if same_file(input, &final_path) {
            bail!(
                "{}: output would replace the input; choose another name",
                final_path.display()
            );
        }
        if claimed.iter().any(|c| same_file(c, &final_path)) {
            bail!(
                "{}: another input in this run already writes this file",
                final_path.display()
            );
        }
        if final_path.exists() && !overwrite {
            bail!(
                "{}: output already exists (add --overwrite to replace it)",
                final_path.display()
            );
        }
        let plan = OutputPlan {
            final_path,
            overwrite,
            codec,
        };
        plan.check_writable()?;
        remove_abandoned_temps(&plan.final_path);
        Ok(plan)
    }

    /// The temporary sibling the encoder writes; it keeps the extension so tools recognise it.
    pub fn temp_path(&self) -> PathBuf {
        let ext = extension_of(&self.final_path);
        work_name(&self.final_path, WorkKind::Temp, Some(&ext))
    }

    /// Moves the finished temporary into place (see [`move_into_place`]); the temporary is
    /// removed whatever happens.
    pub fn commit(&self, temp: TempGuard) -> Result<()> {
        move_into_place(temp.path(), &self.final_path, self.overwrite)?;
        drop(temp); // after a hard link this removes the temporary name; after a rename it is already gone
        Ok(())
    }

    /// Commits the styled video with its side-by-side video (`--compare`), all or nothing: the
    /// side-by-side goes first, and if the styled video then cannot be placed, the side-by-side
    /// file just placed is taken back, so a re-run is not refused because of it.
    pub fn commit_with_side(
        &self,
        temp: TempGuard,
        side: Option<(&OutputPlan, TempGuard)>,
    ) -> Result<()> {
        let Some((side_plan, side_temp)) = side else {
            return self.commit(temp);
        };
        side_plan.commit(side_temp)?;
        self.commit(temp).inspect_err(|_| {
            // With --overwrite an earlier file was replaced and is gone either way; without it
            // the name was free, so the file there is the one just placed.
            if !side_plan.overwrite {
                let _ = std::fs::remove_file(&side_plan.final_path);
            }
        })
    }

    fn check_writable(&self) -> Result<()> {
        let dir = parent_of(&self.final_path);
        if !dir.is_dir() {
            bail!("{}: output folder does not exist", dir.display());
        }
        let probe = self.temp_path().with_extension("probe");
        std::fs::write(&probe, b"").map_err(|e| {
            anyhow::anyhow!(
                "{}: output folder is not writable ({})",
                dir.display(),
                e.kind()
            )
        })?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    }
}

/// Moves a finished temporary to `final_path`. Without `overwrite` this never replaces a file,
/// even one created while we worked (a hard link fails if the name exists, unlike a rename); the
/// temporary name may then remain, for its owner (a [`TempGuard`]) to remove.
pub fn move_into_place(temp: &Path, final_path: &Path, overwrite: bool) -> Result<()> {
    let moved = if overwrite {
        std::fs::rename(temp, final_path)
    } else {
        match std::fs::hard_link(temp, final_path) {
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                bail!(
                    "{}: appeared while we worked; not replacing it (add --overwrite)",
                    final_path.display()
                )
            }
            // Filesystems without hard links: fall back to a checked rename.
            Err(_) if !final_path.exists() => std::fs::rename(temp, final_path),
            other => other,
        }
    };
    moved.with_context(|| {
        format!(
            "{}: cannot move the finished file into place",
            final_path.display()
        )
    })
}

/// The folder a file goes into (`.` for a bare name).
pub fn parent_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// `clip.mov` → `clip.styled.mov`; inputs in containers we don't write, or that cannot hold
/// `codec`, get the codec's first container (`.mp4`; ProRes `.mov`, FFV1 `.mkv`).
pub fn default_name(input: &Path, codec: VideoCodec) -> String {
    let stem = stem_of(input);
    let ext = container_for(input, codec);
    format!("{stem}{DEFAULT_SUFFIX}{ext}")
}

/// The file name without its extension (`video` when it has none).
pub fn stem_of(input: &Path) -> String {
    input
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_else(|| "video".into())
}

/// The extension of `input` when `codec` fits in that container, else the codec's first one.
pub fn container_for(input: &Path, codec: VideoCodec) -> String {
    let ext = extension_of(input);
    // The codec's containers are among those we write.
    match codec.containers().contains(&ext.as_str()) {
        true => ext,
        false => codec.containers()[0].to_string(),
    }
}

fn extension_of(path: &Path) -> String {
    path.extension()
        .map(|e| e.to_string_lossy().to_ascii_lowercase())
        .unwrap_or_default()
}

pub fn same_file(a: &Path, b: &Path) -> bool {
    match (a.canonicalize(), b.canonicalize()) {
        (Ok(a), Ok(b)) => a == b,
        _ => absolute(a) == absolute(b),
    }
}

fn absolute(p: &Path) -> PathBuf {
    std::path::absolute(p).unwrap_or_else(|_| p.to_path_buf())
}

/// Temporaries being written (files, and the cloud coordinator's download folder), so a second
/// Ctrl-C (which exits at once) can still remove them.
static LIVE_TEMPS: std::sync::Mutex<Vec<PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Removes every temporary still being written; called on the way out of an abrupt exit.
pub fn remove_live_temps() {
    if let Ok(temps) = LIVE_TEMPS.lock() {
        for path in temps.iter() {
            remove_temp(path);
        }
    }
}

/// Notes a temporary for [`remove_live_temps`] until [`forget_live_temp`].
pub fn track_live_temp(path: &Path) {
    if let Ok(mut temps) = LIVE_TEMPS.lock() {
        temps.push(path.to_path_buf());
    }
}

pub fn forget_live_temp(path: &Path) {
    if let Ok(mut temps) = LIVE_TEMPS.lock() {
        temps.retain(|p| p != path);
    }
}

fn remove_temp(path: &Path) {
    if path.is_dir() {
        let _ = std::fs::remove_dir_all(path);
    } else {
        let _ = std::fs::remove_file(path);
    }
}

/// Removes the temporaries that a run of stylize killed outright (SIGKILL, power loss) left
/// beside `final_path`: hidden `.NAME.stylize-tmp-PID.*` files and `.NAME.stylize-frames-PID`
/// folders whose process is gone. A live process's are left alone.
pub fn remove_abandoned_temps(final_path: &Path) {
    let Some(name) = final_path.file_name() else {
        return;
    };
    let prefix = format!(".{}.stylize-", name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(parent_of(final_path)) else {
        return;
    };
    for entry in entries.flatten() {
        let file_name = entry.file_name().to_string_lossy().into_owned();
        let Some(rest) = file_name.strip_prefix(&prefix) else {
            continue;
        };
        let Some(pid) = ["tmp-", "frames-"]
            .iter()
            .find_map(|kind| rest.strip_prefix(kind))
            .map(|tail| tail.split('.').next().unwrap_or_default())
            .and_then(|pid| pid.parse::<u32>().ok())
        else {
            continue;
        };
        if pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            remove_temp(&entry.path());
        }
    }
}

/// Refuses to write `path` over one of the files this command reads (`role`: what they are to it),
/// whatever `--overwrite` says: `clip.styled.mp4: output would replace input clip.styled.mp4`.
pub fn refuse_to_replace<'a>(
    path: &Path,
    what: &str,
    role: &str,
    protected: impl IntoIterator<Item = &'a Path>,
) -> Result<()> {
    match protected.into_iter().find(|p| same_file(p, path)) {
        Some(source) => bail!(
            "{}: {what} would replace {role} {}",
            path.display(),
            source.display()
        ),
        None => Ok(()),
    }
}

/// An output folder this command is about to create: removed again when the command ends with
/// nothing in it (every input failed, or it was stopped), so a failed run leaves no empty folder.
pub struct FolderIfMade(Option<PathBuf>);

impl FolderIfMade {
    /// Call before the folder is created; a folder that already exists is never touched.
    pub fn watch(dir: &Path) -> Self {
        FolderIfMade((!dir.exists()).then(|| dir.to_path_buf()))
    }
}

impl Drop for FolderIfMade {
    fn drop(&mut self) {
        if let Some(dir) = &self.0 {
            // remove_dir only removes an empty folder.
            let _ = std::fs::remove_dir(dir);
        }
    }
}

/// Removes a temporary file when dropped, whether the work failed, was interrupted or succeeded
/// (after a successful commit there is nothing left to remove).
pub struct TempGuard(PathBuf);

impl TempGuard {
    pub fn new(path: PathBuf) -> Self {
        track_live_temp(&path);
        TempGuard(path)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempGuard {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
        forget_live_temp(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_names_sit_beside_the_input() {
        assert_eq!(
            default_name(Path::new("dir/clip.mov"), VideoCodec::H264),
            "clip.styled.mov"
        );
        assert_eq!(
            default_name(Path::new("clip.avi"), VideoCodec::H264),
            "clip.styled.mp4"
        );
        let prores = VideoCodec::ProRes(stylize_media::ProResProfile::Hq);
        assert_eq!(
            default_name(Path::new("clip.mp4"), prores),
            "clip.styled.mov"
        );
        assert_eq!(
            default_name(Path::new("clip.mov"), VideoCodec::Ffv1),
            "clip.styled.mkv"
        );
    }

    #[test]
    fn refuses_existing_output_and_the_input_itself() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.mp4");
        std::fs::write(&input, b"x").unwrap();
        let err =
            OutputPlan::new(VideoCodec::H264, &input, Some(&input), None, true, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("replace the input"));
        let existing = dir.path().join("a.styled.mp4");
        std::fs::write(&existing, b"x").unwrap();
        let err = OutputPlan::new(VideoCodec::H264, &input, None, None, false, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("already exists"));
        assert!(OutputPlan::new(VideoCodec::H264, &input, None, None, true, &[]).is_ok());
        let err = OutputPlan::new(
            VideoCodec::H264,
            &input,
            Some(&dir.path().join("x.avi")),
            None,
            false,
            &[],
        )
        .unwrap_err();
        assert!(format!("{err:#}").contains("unsupported output container"));
    }

    #[test]
    fn a_side_by_side_video_is_taken_back_when_the_styled_one_cannot_be_placed() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.mp4");
        std::fs::write(&input, b"x").unwrap();
        let plan = OutputPlan::new(VideoCodec::H264, &input, None, None, false, &[]).unwrap();
        let side = crate::compare::plan_for(&input, &plan, std::slice::from_ref(&plan.final_path))
            .unwrap();
        let write_temps = || {
            let (temp, side_temp) = (
                TempGuard::new(plan.temp_path()),
                TempGuard::new(side.temp_path()),
            );
            std::fs::write(temp.path(), b"styled").unwrap();
            std::fs::write(side_temp.path(), b"wide").unwrap();
            (temp, side_temp)
        };
        let (temp, side_temp) = write_temps();
        std::fs::write(&plan.final_path, b"appeared meanwhile").unwrap();
        let err = plan
            .commit_with_side(temp, Some((&side, side_temp)))
            .unwrap_err();
        assert!(
            format!("{err:#}").contains("appeared while we worked"),
            "{err:#}"
        );
        assert!(!side.final_path.exists(), "side-by-side video taken back");
        assert_eq!(
            std::fs::read(&plan.final_path).unwrap(),
            b"appeared meanwhile"
        );
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "no temporaries left"
        );

        std::fs::remove_file(&plan.final_path).unwrap();
        let (temp, side_temp) = write_temps();
        plan.commit_with_side(temp, Some((&side, side_temp)))
            .unwrap();
        assert_eq!(std::fs::read(&plan.final_path).unwrap(), b"styled");
        assert_eq!(std::fs::read(&side.final_path).unwrap(), b"wide");
    }

    #[test]
    fn commit_never_replaces_without_overwrite() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.mp4");
        std::fs::write(&input, b"x").unwrap();
        let plan = OutputPlan::new(VideoCodec::H264, &input, None, None, false, &[]).unwrap();
        let temp = TempGuard::new(plan.temp_path());
        std::fs::write(temp.path(), b"new").unwrap();
        let temp_path = temp.path().to_path_buf();
        std::fs::write(&plan.final_path, b"appeared meanwhile").unwrap();
        assert!(
            format!("{:#}", plan.commit(temp).unwrap_err()).contains("appeared while we worked")
        );
        assert_eq!(
            std::fs::read(&plan.final_path).unwrap(),
            b"appeared meanwhile"
        );
        assert!(!temp_path.exists(), "temporary removed on failure");
        std::fs::remove_file(&plan.final_path).unwrap();
        let temp = TempGuard::new(plan.temp_path());
        std::fs::write(temp.path(), b"new").unwrap();
        plan.commit(temp).unwrap();
        assert_eq!(std::fs::read(&plan.final_path).unwrap(), b"new");
        assert_eq!(
            std::fs::read_dir(dir.path()).unwrap().count(),
            2,
            "input and output only"
        );
    }

    #[test]
    fn refuses_a_folder_as_output() {
        let dir = tempfile::tempdir().unwrap();
        let input = dir.path().join("a.mp4");
        std::fs::write(&input, b"x").unwrap();
        let folder = dir.path().join("out.mp4");
        std::fs::create_dir(&folder).unwrap();
        let err =
            OutputPlan::new(VideoCodec::H264, &input, Some(&folder), None, true, &[]).unwrap_err();
        assert!(format!("{err:#}").contains("is a folder"));
    }

    #[test]
    fn temp_guard_removes_its_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t");
        std::fs::write(&path, b"x").unwrap();
        drop(TempGuard::new(path.clone()));
        assert!(!path.exists());
    }

    #[test]
    fn abandoned_temps_of_dead_processes_are_removed_and_nothing_else() {
        let dir = tempfile::tempdir().unwrap();
        // A finished child's pid is free (until the system wraps pid numbers around).
        let mut child = std::process::Command::new("true").spawn().unwrap();
        let dead = child.id();
        child.wait().unwrap();
        let alive = std::process::id();
        let keep = [
            format!(".out.mp4.stylize-tmp-{alive}.mp4"),
            format!(".out.mp4.stylize-frames-{alive}"),
            format!(".other.mp4.stylize-tmp-{dead}.mp4"),
            "out.mp4.stylize-tmp-1.mp4".to_string(),
            ".out.mp4.stylize-tmp-notapid.mp4".to_string(),
            "out.mp4".to_string(),
        ];
        let remove = [
            format!(".out.mp4.stylize-tmp-{dead}.mp4"),
            format!(".out.mp4.stylize-tmp-{dead}.probe"),
            format!(".out.mp4.stylize-frames-{dead}"),
        ];
        for name in keep.iter().chain(&remove) {
            let path = dir.path().join(name);
            if name.contains("frames") {
                std::fs::create_dir(&path).unwrap();
                std::fs::write(path.join("000001"), b"frame").unwrap();
            } else {
                std::fs::write(&path, b"x").unwrap();
            }
        }
        remove_abandoned_temps(&dir.path().join("out.mp4"));
        let mut left: Vec<String> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        left.sort();
        let mut expected = keep.to_vec();
        expected.sort();
        assert_eq!(left, expected);
    }
}
