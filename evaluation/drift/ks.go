package drift

import (
	"math"
	"slices"
)

// MaxExactKS is the largest sample size for which KS2Sample computes the
// exact p-value (scipy's limit for method="auto"); larger samples get the
// asymptotic one.
const MaxExactKS = 10000

// maxExactCells bounds the lattice walk of an exact p-value for unequal
// sizes, which visits about n1·n2·2D cells. It binds only for large
// samples that differ a lot — 10,000 against 9,000 at D > 0.056, where the
// p-value is below 1e-12 — and keeps a check over hundreds of dimensions
// from taking minutes exactly when the answer is "drifted" beyond doubt.
const maxExactCells = 1e7

// KSResult is a two-sample Kolmogorov–Smirnov test, two-sided.
type KSResult struct {
	D      float64 // sup |F1 − F2| of the empirical CDFs
	PValue float64
	N1, N2 int
	Exact  bool // PValue is exact, not asymptotic
}

// KS2Sample tests whether x and y come from the same continuous
// distribution. Ties are allowed (the statistic is computed at each
// distinct value), but the p-value assumes a continuous distribution, as
// scipy's does.
func KS2Sample(x, y []float64) (KSResult, error) {
	if len(x) == 0 {
		return KSResult{}, &InputError{Arg: "sample 1", Problem: "is empty"}
	}
	if len(y) == 0 {
		return KSResult{}, &InputError{Arg: "sample 2", Problem: "is empty"}
	}
	if err := checkFinite("sample 1", x); err != nil {
		return KSResult{}, err
	}
	if err := checkFinite("sample 2", y); err != nil {
		return KSResult{}, err
	}
	return ksSorted(sortedCopy(x), sortedCopy(y)), nil
}

func sortedCopy(x []float64) []float64 {
	s := slices.Clone(x)
	slices.Sort(s)
	return s
}

// ksSorted is KS2Sample on sorted, finite, non-empty samples.
func ksSorted(x, y []float64) KSResult {
	n1, n2 := int64(len(x)), int64(len(y))
	g := gcd(n1, n2)
	n1g, n2g := n1/g, n2/g
	// F1 − F2 at a point is (c1·n2g − c2·n1g)/lcm with c the counts ≤ it,
	// so the statistic is an integer h over lcm = n1·n2/g, computed exactly.
	var h, c1, c2 int64
	for i, j := 0, 0; i < len(x) || j < len(y); {
		v := math.Inf(1)
		if i < len(x) {
			v = x[i]
		}
		if j < len(y) && y[j] < v {
			v = y[j]
		}
		for i < len(x) && x[i] == v {
			i++
		}
		for j < len(y) && y[j] == v {
			j++
		}
		c1, c2 = int64(i), int64(j)
		d := c1*n2g - c2*n1g
		h = max(h, d, -d)
	}
	r := KSResult{D: float64(h) / float64(n1g*n2), N1: int(n1), N2: int(n2)}
	switch {
	case h == 0:
		r.PValue, r.Exact = 1, true
	case max(n1, n2) <= MaxExactKS && (n1 == n2 || ksBandCells(n1, n2, g, h) <= maxExactCells):
		r.PValue, r.Exact = ksExactPValue(n1, n2, g, h), true
	default:
		en := float64(n1) * float64(n2) / float64(n1+n2)
		r.PValue = kolmogorovSF(math.Sqrt(en) * r.D)
	}
	r.PValue = min(max(r.PValue, 0), 1)
	return r
}

func gcd(a, b int64) int64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}

// ksExactPValue is P(D ≥ h/lcm) for samples of sizes n1, n2 with gcd g.
func ksExactPValue(n1, n2, g, h int64) float64 {
	if n1 == n2 {
		return ksOutsideSquare(n1, h)
	}
	return ksOutsideBand(n1, n2, g, h)
}

// ksOutsideSquare is the equal-size case, P(D_{n,n} ≥ h/n) =
// 2·Σ_{k≥1} (−1)^{k−1} C(2n, n−kh)/C(2n, n), summed from the last term
// down as 2·A1(1 − A2(1 − A3(…))) with A_k = C(2n, n−kh)/C(2n, n−(k−1)h),
// a product of h ratios each, so that no term cancels another.
func ksOutsideSquare(n, h int64) float64 {
	p := 0.0
	for k := n / h; k >= 1; k-- {
		a := 1.0
		for j := range h {
			// C(2n, n−kh)/C(2n, n−kh+h) = Π_j (n−kh+h−j)/(n+kh−h+j+1)
			a *= float64(n-k*h+h-j) / float64(n+k*h-h+j+1)
		}
		p = a * (1 - p)
	}
	return 2 * p
}

// ksBandCells is about how many cells ksOutsideBand visits.
func ksBandCells(n1, n2, g, h int64) float64 {
	m, n := max(n1, n2), min(n1, n2)
	return float64(m) * float64(min(n+1, 2*h/(m/g)+2))
}

// ksOutsideBand is the probability that a uniformly random lattice path from
// (0, 0) to (m, n), with unit steps right and up, touches a point with
// |i/m − j/n| ≥ h·g/(m·n), i.e. |ng·i − mg·j| ≥ h. P(i, j), the same
// probability for paths to (i, j), is 1 outside the band and
// (i·P(i−1, j) + j·P(i, j−1))/(i + j) inside it, because i/(i+j) of the
// paths to (i, j) arrive from the left. Working with probabilities, not
// path counts, keeps every number in [0, 1]: nothing overflows and the
// answer is not a difference of nearly equal numbers. Only the band is
// visited, so the cost is about m·(2h/mg + 1).
func ksOutsideBand(m, n, g, h int64) float64 {
	if m < n {
		m, n = n, m
	}
	mg, ng := m/g, n/g
	col := make([]float64, n+1) // P(i, ·) for the current i; 1 outside the band
	for j := range col {
		col[j] = 1
	}
	// Reciprocals, because a division per cell, chained through col[j−1],
	// is what the walk's time goes on; a multiplication rounds within an ulp
	// of it.
	inv := make([]float64, m+n+1)
	for k := 1; k < len(inv); k++ {
		inv[k] = 1 / float64(k)
	}
	lo, hi := int64(0), min(ceilDiv(h, mg), n+1) // band at i = 0: j < h/mg
	for j := lo; j < hi; j++ {
		col[j] = 0
	}
	for i := int64(1); i <= m; i++ {
		newLo := max(floorDiv(ng*i-h, mg)+1, 0)
		newHi := min(ceilDiv(ng*i+h, mg), n+1)
		if newHi <= newLo {
			return 1 // the band closes: every path leaves it
		}
		for j := lo; j < newLo; j++ {
			col[j] = 1 // left the band from below
		}
		lo, hi = newLo, newHi
		fi := float64(i)
		for j := lo; j < hi; j++ {
			if j == 0 {
				continue // P(i, 0) = P(i−1, 0)
			}
			r := inv[i+j]
			col[j] = fi*r*col[j] + float64(j)*r*col[j-1]
		}
	}
	return col[n]
}

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b != 0 && (a < 0) != (b < 0) {
		q--
	}
	return q
}

func ceilDiv(a, b int64) int64 { return -floorDiv(-a, b) }

// kolmogorovSF is the survival function of the Kolmogorov distribution,
// Q(λ) = 2·Σ_{k≥1} (−1)^{k−1}·exp(−2k²λ²). For small λ that series
// converges slowly, so there it uses the Jacobi-transformed form
// 1 − (√(2π)/λ)·Σ_{k≥1} exp(−(2k−1)²π²/(8λ²)).
func kolmogorovSF(lambda float64) float64 {
	if lambda <= 0 {
		return 1
	}
	if lambda < 1 {
		s := 0.0
		for k := 1; k < 20; k++ {
			t := math.Exp(-float64((2*k-1)*(2*k-1)) * math.Pi * math.Pi / (8 * lambda * lambda))
			s += t
			if t < 1e-17*s {
				break
			}
		}
		return 1 - math.Sqrt(2*math.Pi)/lambda*s
	}
	s, sign := 0.0, 1.0
	for k := 1; k < 100; k++ {
		t := math.Exp(-2 * float64(k*k) * lambda * lambda)
		s += sign * t
		if t < 1e-17*math.Abs(s) {
			break
		}
		sign = -sign
	}
	return 2 * s
}
