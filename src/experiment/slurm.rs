//! Slurm job arrays: a plan's shards as the tasks of one array, and a merge job
//! that runs once every task has succeeded.

use std::path::{Path, PathBuf};

use crate::scenario::Plan;

/// What the scripts ask of Slurm, and what they pass to every task.
pub struct SlurmJob<'a> {
    /// Array tasks, one shard each.
    pub tasks: usize,
    /// CPUs (and peergrid threads) per task.
    pub cpus: usize,
    /// The partition to submit to, if not the default.
    pub partition: Option<String>,
    /// The time limit per task, e.g. 02:00:00.
    pub time: Option<String>,
    /// The `--set` overrides every task applies.
    pub sets: &'a [String],
    /// The master seed every task uses, if not the scenario's.
    pub seed: Option<u64>,
}

impl SlurmJob<'_> {
    /// Writes array.sbatch, merge.sbatch and submit.sh into `dir`/slurm for the
    /// scenario at `file` (absolute paths), run by the binary `exe`; returns that folder.
    pub fn write(&self, plan: &Plan, file: &Path, dir: &Path, exe: &Path) -> std::io::Result<PathBuf> {
        let slurm_dir = dir.join("slurm");
        std::fs::create_dir_all(&slurm_dir)?;
        let q = |p: &Path| shell_quote(&p.display().to_string());
        let mut args: Vec<String> = self.sets.iter().map(|s| format!("--set {}", shell_quote(s))).collect();
        if let Some(s) = self.seed {
            args.push(format!("--seed {s}"));
        }
        let mut header = format!("#!/bin/bash\n#SBATCH --job-name=peergrid-{}\n", plan.name);
        if let Some(p) = &self.partition {
            header.push_str(&format!("#SBATCH --partition={p}\n"));
        }
        if let Some(t) = &self.time {
            header.push_str(&format!("#SBATCH --time={t}\n"));
        }
        let array = format!(
            "{header}#SBATCH --array=0-{last}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --output={log}\n\
             # Shard $SLURM_ARRAY_TASK_ID of {tasks}; --resume lets a failed task be resubmitted.\n\
             set -euo pipefail\n\
             exec {exe} run {file} --shard \"$SLURM_ARRAY_TASK_ID/{tasks}\" --out {shards}/\"$SLURM_ARRAY_TASK_ID\" --threads {cpus} --resume {args}\n",
            last = self.tasks - 1,
            cpus = self.cpus,
            tasks = self.tasks,
            log = q(&slurm_dir.join("shard-%a.log")),
            exe = q(exe),
            file = q(file),
            shards = q(&dir.join("shards")),
            args = args.join(" "),
        );
        let shard_dirs: Vec<String> = (0..self.tasks).map(|i| q(&dir.join("shards").join(i.to_string()))).collect();
        let merge = format!(
            "{header}#SBATCH --cpus-per-task=1\n#SBATCH --output={log}\nset -euo pipefail\nexec {exe} merge {dirs} --out {out} --force\n",
            log = q(&slurm_dir.join("merge.log")),
            exe = q(exe),
            dirs = shard_dirs.join(" "),
            out = q(dir),
        );
        let submit = format!(
            "#!/bin/bash\n# Submits the shard array, then the merge once every shard has succeeded.\nset -euo pipefail\n\
             array=$(sbatch --parsable {a})\nmerge=$(sbatch --parsable --dependency=afterok:\"${{array%%;*}}\" {m})\n\
             echo \"shards: job $array, merge: job $merge\"\n",
            a = q(&slurm_dir.join("array.sbatch")),
            m = q(&slurm_dir.join("merge.sbatch")),
        );
        for (name, text) in [("array.sbatch", array), ("merge.sbatch", merge), ("submit.sh", submit)] {
            let path = slurm_dir.join(name);
            std::fs::write(&path, text)?;
            #[cfg(unix)]
            {
                use std::os::unix::fs::PermissionsExt;
                let _ = std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755));
            }
        }
        Ok(slurm_dir)
    }
}

/// `s` quoted for a POSIX shell.
pub fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', "'\\''"))
}
