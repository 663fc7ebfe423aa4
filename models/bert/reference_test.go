package bert_test

import (
	"math"
	"strconv"
	"testing"

	"github.com/capflow/capflow/models/bert"
	"github.com/capflow/capflow/models/safetensors"
)

// reference is a plain float64 BertModel forward pass written from the
// architecture, independent of the ONNX graph, to check the conversion.
type reference struct {
	cfg    bert.Config
	f      *safetensors.File
	prefix string
}

func (r reference) w(t *testing.T, name string) []float64 {
	t.Helper()
	v, _, err := r.f.Float32(r.prefix + name)
	if err != nil {
		t.Fatalf("reference: %v", err)
	}
	out := make([]float64, len(v))
	for i, x := range v {
		out[i] = float64(x)
	}
	return out
}

// linear: x [n, in] times a PyTorch [out, in] weight, plus bias.
func (r reference) linear(t *testing.T, x [][]float64, name string) [][]float64 {
	w, b := r.w(t, name+".weight"), r.w(t, name+".bias")
	out := len(b)
	in := len(w) / out
	y := make([][]float64, len(x))
	for n, row := range x {
		y[n] = make([]float64, out)
		for o := range out {
			s := b[o]
			for i := range in {
				s += row[i] * w[o*in+i]
			}
			y[n][o] = s
		}
	}
	return y
}

func (r reference) layerNorm(t *testing.T, x [][]float64, name string) [][]float64 {
	g, b := r.w(t, name+".weight"), r.w(t, name+".bias")
	y := make([][]float64, len(x))
	for n, row := range x {
		mean, v := 0.0, 0.0
		for _, a := range row {
			mean += a
		}
		mean /= float64(len(row))
		for _, a := range row {
			v += (a - mean) * (a - mean)
		}
		v /= float64(len(row))
		y[n] = make([]float64, len(row))
		for i, a := range row {
			y[n][i] = (a-mean)/math.Sqrt(v+r.cfg.LayerNormEps)*g[i] + b[i]
		}
	}
	return y
}

func add(a, b [][]float64) [][]float64 {
	y := make([][]float64, len(a))
	for i := range a {
		y[i] = make([]float64, len(a[i]))
		for j := range a[i] {
			y[i][j] = a[i][j] + b[i][j]
		}
	}
	return y
}

// forward returns last_hidden_state [seq][hidden] for one sequence.
func (r reference) forward(t *testing.T, ids, types, mask []int64) [][]float64 {
	t.Helper()
	c := r.cfg
	H := c.HiddenSize
	word, typ, pos := r.w(t, "embeddings.word_embeddings.weight"), r.w(t, "embeddings.token_type_embeddings.weight"), r.w(t, "embeddings.position_embeddings.weight")
	x := make([][]float64, len(ids))
	for s := range ids {
		x[s] = make([]float64, H)
		for h := range H {
			x[s][h] = word[int(ids[s])*H+h] + typ[int(types[s])*H+h] + pos[s*H+h]
		}
	}
	x = r.layerNorm(t, x, "embeddings.LayerNorm")
	nh := c.NumAttentionHeads
	dh := H / nh
	for l := range c.NumHiddenLayers {
		p := "encoder.layer." + strconv.Itoa(l) + "."
		q, k, v := r.linear(t, x, p+"attention.self.query"), r.linear(t, x, p+"attention.self.key"), r.linear(t, x, p+"attention.self.value")
		ctx := make([][]float64, len(ids))
		for i := range ids {
			ctx[i] = make([]float64, H)
			for h := range nh {
				scores := make([]float64, len(ids))
				top := math.Inf(-1)
				for j := range ids {
					s := 0.0
					for d := range dh {
						s += q[i][h*dh+d] * k[j][h*dh+d]
					}
					s /= math.Sqrt(float64(dh))
					if mask[j] == 0 {
						s += -math.MaxFloat32
					}
					scores[j] = s
					top = max(top, s)
				}
				sum := 0.0
				for j := range scores {
					scores[j] = math.Exp(scores[j] - top)
					sum += scores[j]
				}
				for j := range ids {
					for d := range dh {
						ctx[i][h*dh+d] += scores[j] / sum * v[j][h*dh+d]
					}
				}
			}
		}
		x = r.layerNorm(t, add(r.linear(t, ctx, p+"attention.output.dense"), x), p+"attention.output.LayerNorm")
		inter := r.linear(t, x, p+"intermediate.dense")
		for _, row := range inter {
			for i, a := range row {
				row[i] = 0.5 * a * (1 + math.Erf(a/math.Sqrt2))
			}
		}
		x = r.layerNorm(t, add(r.linear(t, inter, p+"output.dense"), x), p+"output.LayerNorm")
	}
	return x
}
