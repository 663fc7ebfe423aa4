package bm25

import (
	"testing"

	"github.com/capflow/capflow/featurestore"
	"github.com/stretchr/testify/assert"
)

func TestCapabilityDocument(t *testing.T) {
	tools := map[string]featurestore.Tool{
		"getWeather": {ID: "getWeather", Name: "getWeather", Description: "Current weather for a city"},
		"getTide":    {ID: "getTide", Name: "getTide", Description: "Tide times for a port"},
		"bookFlight": {ID: "bookFlight", Name: "bookFlight", Description: "Book a flight"},
	}
	caps := map[string]featurestore.Capability{
		"Weather": {ID: "Weather", Name: "Weather", Description: "Weather / Sea tools", Members: []string{"getWeather", "getTide"}},
		"Travel":  {ID: "Travel", Name: "Travel", Description: "Flights", Members: []string{"bookFlight", "getWeather"}},
		"Trip":    {ID: "Trip", Name: "Trip", Description: "Plan a trip", Members: []string{"Weather", "Travel"}},
		"All":     {ID: "All", Name: "All", Members: []string{"Trip", "bookFlight"}},
	}

	// Level 0: name, description, each tool's name and description.
	assert.Equal(t, "Weather\nWeather / Sea tools\ngetWeather\nCurrent weather for a city\ngetTide\nTide times for a port",
		CapabilityDocument(caps["Weather"], tools, caps))

	// Level 1: each member capability's name and description, then the
	// names of its tools.
	assert.Equal(t, "Trip\nPlan a trip\n"+
		"Weather\nWeather / Sea tools\ngetWeather\ngetTide\n"+
		"Travel\nFlights\nbookFlight\ngetWeather",
		CapabilityDocument(caps["Trip"], tools, caps))

	// Level 2: the tools beneath a member at any depth, each once; an empty
	// description adds nothing; a direct tool member keeps its description.
	assert.Equal(t, "All\n"+
		"Trip\nPlan a trip\ngetWeather\ngetTide\nbookFlight\n"+
		"bookFlight\nBook a flight",
		CapabilityDocument(caps["All"], tools, caps))

	// An unknown member contributes its id.
	assert.Equal(t, "X\nsomethingElse", CapabilityDocument(featurestore.Capability{ID: "X", Name: "X", Members: []string{"somethingElse"}}, tools, caps))
}

func TestCapabilityDocumentCycle(t *testing.T) {
	tools := map[string]featurestore.Tool{"t": {ID: "t", Name: "t"}}
	caps := map[string]featurestore.Capability{
		"A": {ID: "A", Name: "A", Members: []string{"B"}},
		"B": {ID: "B", Name: "B", Members: []string{"A", "t", "B"}},
	}
	assert.Equal(t, "A\nB\nt", CapabilityDocument(caps["A"], tools, caps))
}
