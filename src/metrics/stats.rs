//! Statistics over replicates: mean, sample standard deviation and a 95% confidence
//! interval from Student's t distribution.

use statrs::distribution::{ContinuousCDF, StudentsT};

/// Summary of one metric at one sweep point.
#[derive(Clone, Debug, PartialEq)]
pub struct Summary {
    /// Mean of the metric over the replicates.
    pub mean: f64,
    /// Sample standard deviation (n − 1); `None` below two values.
    pub std: Option<f64>,
    /// 95% confidence interval of the mean (low, high); `None` below two values.
    pub ci95: Option<(f64, f64)>,
    /// How many values (replicates) went into it.
    pub n: usize,
}

/// The two-sided 95% quantile t_{0.975, df}.
pub fn t975(df: usize) -> f64 {
    StudentsT::new(0.0, 1.0, df as f64).map(|t| t.inverse_cdf(0.975)).unwrap_or(f64::NAN)
}

/// Summarises the values; `None` if there are none.
pub fn summarize(values: &[f64]) -> Option<Summary> {
    let n = values.len();
    if n == 0 {
        return None;
    }
    let mean = values.iter().sum::<f64>() / n as f64;
    if n < 2 {
        return Some(Summary { mean, std: None, ci95: None, n });
    }
    let var = values.iter().map(|v| (v - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let std = var.sqrt();
    let half = t975(n - 1) * std / (n as f64).sqrt();
    Some(Summary { mean, std: Some(std), ci95: Some((mean - half, mean + half)), n })
}

/// Welch's two-sample t-test of two means: the statistic, its Welch–Satterthwaite
/// degrees of freedom and the two-sided p-value. `None` below two values on either
/// side. Two samples without any spread are equal (p = 1) or different (p = 0).
pub fn welch(a: &Summary, b: &Summary) -> Option<Welch> {
    let (sa, sb) = (a.std?, b.std?);
    let (va, vb) = (sa * sa / a.n as f64, sb * sb / b.n as f64);
    let diff = b.mean - a.mean;
    if va + vb == 0.0 {
        let p = if diff == 0.0 { 1.0 } else { 0.0 };
        return Some(Welch { t: if diff == 0.0 { 0.0 } else { diff.signum() * f64::INFINITY }, df: f64::NAN, p });
    }
    let t = diff / (va + vb).sqrt();
    let df = (va + vb).powi(2) / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    let p = StudentsT::new(0.0, 1.0, df).map_or(f64::NAN, |d| 2.0 * (1.0 - d.cdf(t.abs())));
    Some(Welch { t, df, p: p.clamp(0.0, 1.0) })
}

/// The outcome of [`welch`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Welch {
    /// (mean of b − mean of a) over its standard error.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided p-value.
    pub p: f64,
}

/// Holm's step-down correction of p-values for the number of comparisons: the i-th
/// smallest of m is multiplied by m − i + 1, and the results made monotone. The
/// family-wise error rate stays below α when every adjusted p < α is called
/// significant. `None` entries are not comparisons and stay `None`.
pub fn holm(p: &[Option<f64>]) -> Vec<Option<f64>> {
    let mut order: Vec<usize> = (0..p.len()).filter(|&i| p[i].is_some()).collect();
    order.sort_by(|&i, &j| p[i].unwrap_or(1.0).total_cmp(&p[j].unwrap_or(1.0)).then(i.cmp(&j)));
    let m = order.len();
    let mut out = vec![None; p.len()];
    let mut running: f64 = 0.0;
    for (rank, &i) in order.iter().enumerate() {
        let adjusted = (p[i].unwrap_or(1.0) * (m - rank) as f64).min(1.0);
        running = running.max(adjusted);
        out[i] = Some(running);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn t_quantiles_match_the_tables() {
        // Two-sided 95% critical values from any t table.
        for (df, t) in [(1, 12.706), (2, 4.303), (4, 2.776), (9, 2.262), (29, 2.045), (1000, 1.962)] {
            assert!((t975(df) - t).abs() < 1e-3, "df {df}: {}", t975(df));
        }
    }

    #[test]
    fn interval_of_a_small_sample() {
        let s = summarize(&[1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!(s.mean, 3.0);
        assert!((s.std.unwrap() - 2.5f64.sqrt()).abs() < 1e-12);
        let (lo, hi) = s.ci95.unwrap();
        let half = 2.776_445 * 2.5f64.sqrt() / 5f64.sqrt();
        assert!((lo - (3.0 - half)).abs() < 1e-5 && (hi - (3.0 + half)).abs() < 1e-5);
        assert_eq!(summarize(&[4.0]).unwrap().ci95, None);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn welch_matches_a_worked_example() {
        // Two samples of five with variances 1 and 4 and means 1 apart:
        // t = 1 / sqrt(1/5 + 4/5) = 1, df = 1 / ((1/25 + 16/25) / 4) = 100/17.
        let a = Summary { mean: 10.0, std: Some(1.0), ci95: None, n: 5 };
        let b = Summary { mean: 11.0, std: Some(2.0), ci95: None, n: 5 };
        let w = welch(&a, &b).expect("two samples");
        assert!((w.t - 1.0).abs() < 1e-12 && (w.df - 100.0 / 17.0).abs() < 1e-9, "{w:?}");
        // P(|T| > 1) on 5.88 degrees of freedom.
        assert!((w.p - 0.356).abs() < 0.002, "{w:?}");
        let flat = Summary { mean: 3.0, std: Some(0.0), ci95: None, n: 3 };
        assert_eq!(welch(&flat, &flat).map(|w| w.p), Some(1.0));
        let other = Summary { mean: 4.0, ..flat.clone() };
        assert_eq!(welch(&flat, &other).map(|w| w.p), Some(0.0));
        assert_eq!(welch(&Summary { std: None, n: 1, ..flat.clone() }, &flat), None);
    }

    #[test]
    fn holm_scales_the_smallest_most_and_stays_monotone() {
        let adjusted = holm(&[Some(0.01), None, Some(0.04), Some(0.03)]);
        // m = 3: 0.01·3 = 0.03, 0.03·2 = 0.06, 0.04·1 = 0.04 → raised to 0.06.
        let expect = [Some(0.03), None, Some(0.06), Some(0.06)];
        for (got, want) in adjusted.iter().zip(expect) {
            assert_eq!(got.map(|p| (p * 1e9).round()), want.map(|p: f64| (p * 1e9).round()));
        }
    }
}
