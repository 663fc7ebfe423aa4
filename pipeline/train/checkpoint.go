package train

import (
	"github.com/capflow/capflow/internal/atomicfile"

	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"

	"github.com/capflow/capflow/models/safetensors"
	"github.com/capflow/capflow/models/shgat"
	"github.com/capflow/capflow/models/valuenet"
	"github.com/capflow/capflow/pipeline/replay"
)

// Checkpoint files, in one directory. Everything a run needs to continue
// exactly as if uninterrupted: weights (current and best), the value
// network, Adam's moments, the replay buffer, the RNG and the counters.
const (
	ckptModel = "model.safetensors"
	ckptBest  = "best.safetensors"
	ckptValue = "value.safetensors"
	ckptAdam  = "adam.safetensors"
	ckptState = "state.json"
)

type trainerState struct {
	Config       Config            `json:"config"`
	Step         int               `json:"step"`
	Epoch        int               `json:"epoch"`
	StepInEpoch  int               `json:"step_in_epoch"`
	Bad          int               `json:"bad"`
	BestVal      Validation        `json:"best_validation"`
	History      []Validation      `json:"history"`
	Started      bool              `json:"started"`
	ValueTrained bool              `json:"value_trained"`
	Done         bool              `json:"done"`
	AdamStep     int               `json:"adam_step"`
	Calib        []float64         `json:"calib"`
	CalibAdam    *Adam             `json:"calib_adam"`
	RNG          []byte            `json:"rng"`
	Replay       replay.State[int] `json:"replay"`
}

// Save writes a checkpoint into dir (created if needed). Each file is
// written atomically; state.json, written last, marks the checkpoint
// complete.
func (t *Trainer) Save(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	rngState, err := t.pcg.MarshalBinary()
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	adam, err := safetensors.Encode([]safetensors.Tensor{
		{Name: "m", Shape: []int64{int64(len(t.adam.M))}, F64: t.adam.M},
		{Name: "v", Shape: []int64{int64(len(t.adam.V))}, F64: t.adam.V},
	}, nil)
	if err != nil {
		return err
	}
	if err := atomicfile.Write(filepath.Join(dir, ckptAdam), adam); err != nil {
		return err
	}
	if err := t.model.Save(filepath.Join(dir, ckptModel)); err != nil {
		return err
	}
	if t.best != nil {
		best := &shgat.Model{Config: t.model.Config, Levels: t.model.Levels, Params: t.best}
		if err := best.Save(filepath.Join(dir, ckptBest)); err != nil {
			return err
		}
	}
	if err := t.value.Save(filepath.Join(dir, ckptValue)); err != nil {
		return err
	}
	st := trainerState{
		Config: t.cfg, Step: t.step, Epoch: t.epoch, StepInEpoch: t.stepInEpoch, Bad: t.bad,
		BestVal: t.bestVal, History: t.history, Started: t.started, ValueTrained: t.valueTrained, Done: t.done,
		AdamStep: t.adam.Step, Calib: t.calib, CalibAdam: t.calibAdam, RNG: rngState, Replay: t.buf.Snapshot(),
	}
	b, err := json.Marshal(st)
	if err != nil {
		return fmt.Errorf("train: checkpoint: %w", err)
	}
	return atomicfile.Write(filepath.Join(dir, ckptState), b)
}

// CheckpointError says why a checkpoint cannot be resumed.
type CheckpointError struct {
	Dir, Reason string
	Err         error
}

func (e *CheckpointError) Error() string {
	return fmt.Sprintf("train: checkpoint %s: %s", e.Dir, e.Reason)
}

func (e *CheckpointError) Unwrap() error { return e.Err }

// Resume restores a trainer from a checkpoint written by Save, on the same
// data. It continues exactly where the saved trainer was.
func Resume(dir string, data *Data) (*Trainer, error) {
	fail := func(reason string, err error) error { return &CheckpointError{Dir: dir, Reason: reason, Err: err} }
	b, err := os.ReadFile(filepath.Join(dir, ckptState))
	if err != nil {
		return nil, fail("no state.json (incomplete or not a checkpoint)", err)
	}
	var st trainerState
	if err := json.Unmarshal(b, &st); err != nil {
		return nil, fail("state.json: "+err.Error(), err)
	}
	if st.Config.BetaAnneal == "" {
		// Written before BetaAnneal existed, when β always followed the
		// replay config; the buffer's saved config carries that schedule.
		st.Config.BetaAnneal = BetaAnnealReplay
	}
	t, err := NewTrainer(st.Config, data)
	if err != nil {
		return nil, fail("config or data does not fit", err)
	}
	m, err := shgat.Load(filepath.Join(dir, ckptModel))
	if err != nil {
		return nil, fail("model", err)
	}
	if len(m.Params.Data) != len(t.model.Params.Data) {
		return nil, fail(fmt.Sprintf("model has %d parameters, the data needs %d", len(m.Params.Data), len(t.model.Params.Data)), nil)
	}
	t.model = m
	if st.Started {
		best, err := shgat.Load(filepath.Join(dir, ckptBest))
		if err != nil {
			return nil, fail("best model", err)
		}
		t.best = best.Params
	}
	if t.value, err = valuenet.Load(filepath.Join(dir, ckptValue)); err != nil {
		return nil, fail("value network", err)
	}
	ab, err := os.ReadFile(filepath.Join(dir, ckptAdam))
	if err != nil {
		return nil, fail("adam state", err)
	}
	af, err := safetensors.Parse(ckptAdam, ab)
	if err != nil {
		return nil, fail("adam state", err)
	}
	mm, _, err1 := af.Float64("m")
	vv, _, err2 := af.Float64("v")
	if err1 != nil || err2 != nil || len(mm) != len(t.adam.M) || len(vv) != len(t.adam.V) {
		return nil, fail("adam moments do not match the model", nil)
	}
	copy(t.adam.M, mm)
	copy(t.adam.V, vv)
	t.adam.Step = st.AdamStep
	if len(st.Calib) != 2 || st.CalibAdam == nil || len(st.CalibAdam.M) != 2 || len(st.CalibAdam.V) != 2 {
		return nil, fail("TD head state missing", nil)
	}
	t.calib, t.calibAdam = st.Calib, st.CalibAdam
	if t.buf, err = replay.Restore(st.Replay); err != nil {
		return nil, fail("replay buffer", err)
	}
	t.pcg = &rand.PCG{}
	if err := t.pcg.UnmarshalBinary(st.RNG); err != nil {
		return nil, fail("rng", err)
	}
	t.rng = rand.New(t.pcg)
	t.step, t.epoch, t.stepInEpoch, t.bad = st.Step, st.Epoch, st.StepInEpoch, st.Bad
	t.bestVal, t.history, t.started, t.valueTrained, t.done = st.BestVal, st.History, st.Started, st.ValueTrained, st.Done
	return t, nil
}
