package counterfactual_test

import (
	"context"
	"fmt"

	"github.com/capflow/capflow/evaluation/counterfactual"
	"github.com/capflow/capflow/featurestore"
)

// Score logged experiences with a new model and estimate its success rate.
func Example() {
	exps := []featurestore.Experience{
		{CandidateIDs: []string{"search", "fetch", "mail"}, SelectedCapability: "search", Rank: 1, Outcome: featurestore.OutcomeSuccess},
		{CandidateIDs: []string{"search", "fetch", "mail"}, SelectedCapability: "fetch", Rank: 2, Outcome: featurestore.OutcomeSuccess},
		{CandidateIDs: []string{"mail", "fetch"}, SelectedCapability: "mail", Rank: 1, Outcome: featurestore.OutcomeFailure},
		{CandidateIDs: []string{"mail", "fetch"}, SelectedCapability: "fetch", Rank: 2, Outcome: featurestore.OutcomePartial},
		{CandidateIDs: []string{"search", "mail"}, SelectedCapability: "search", Rank: 1, Outcome: featurestore.OutcomeFailure},
	}
	// Success rate: success 1, partial and failure 0.
	rounds, err := counterfactual.FromExperiences(exps, counterfactual.Rewards{Success: 1})
	if err != nil {
		fmt.Println(err)
		return
	}
	newModel := map[string]float64{"search": 0.2, "fetch": 1.5, "mail": -1} // stands in for the new ranker
	for i := range rounds {
		for _, c := range rounds[i].Candidates {
			rounds[i].Scores = append(rounds[i].Scores, newModel[c])
		}
	}
	rep, err := counterfactual.Evaluate(context.Background(), rounds, counterfactual.Config{
		Policy: counterfactual.SoftmaxPolicy(1, 0.05),
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	fmt.Printf("logged %.2f, IPS %.2f, SNIPS %.2f, DR %.2f (ESS %.1f of %d)\n",
		rep.Logged.Value, rep.IPS.Value, rep.SNIPS.Value, rep.DR.Value, rep.IPS.ESS, rep.N)
	// Output: logged 0.40, IPS 0.51, SNIPS 0.41, DR 0.47 (ESS 3.5 of 5)
}
