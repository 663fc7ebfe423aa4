package bm25

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestTokenizer(t *testing.T) {
	split := Tokenizer{SplitCase: true}
	for _, tc := range []struct {
		tok  Tokenizer
		in   string
		want string // terms joined by spaces; "" for none
	}{
		{Tokenizer{}, "Get the Weather-Forecast, please!", "get the weather forecast please"},
		{Tokenizer{}, "getWeatherForecast snake_case_name", "getweatherforecast snake case name"},
		{split, "getWeatherForecast", "get weather forecast"},
		{split, "GetWeather", "get weather"},
		{split, "HTMLParser parseHTML", "html parser parse html"},
		{split, "snake_case_name", "snake case name"},
		{split, "calculateCO2Emissions getB2BMarketingData getV2Data", "calculate co2 emissions get b2b marketing data get v2 data"},
		{split, "mp3 player for 85 minutes", "mp3 player for 85 minutes"},
		{split, "getPM2.5Level", "get pm2 5 level"},
		{split, "ΑλφαΒήτα Café naïveBayes", "αλφα βήτα café naïve bayes"},
		{split, "e\u0301cole", "e\u0301cole"}, // a combining mark stays in its word
		{split, "東京タワー 検索", "東京タワー 検索"},
		{split, "abc\xffdef", "abc def"}, // invalid UTF-8 separates, never panics
		{split, "", ""},
		{split, " ,;- _ ", ""},
		{Tokenizer{SplitCase: true, KeepCompound: true}, "getWeather now", "get weather getweather now"},
		{Tokenizer{KeepCompound: true}, "getWeather", "getweather"}, // nothing split, nothing added
		{Tokenizer{Stopwords: true}, "The weather OF Paris and a city", "weather paris city"},
		{Tokenizer{Stem: true}, "queries forecasts classes status glass toes movies as is", "query forecast classe status glass toes movy as is"},
		{Tokenizer{Stopwords: true, Stem: true}, "Its cities", "it city"}, // stopwords go before stemming, as in Lucene
		{DefaultTokenizer(), "Retrieve the getWeatherForecast for a city", "retrieve get weather forecast city"},
	} {
		assert.Equal(t, tc.want, strings.Join(tc.tok.Tokens(tc.in), " "), "%+v %q", tc.tok, tc.in)
	}
}

func TestTokenizerMatchesTerms(t *testing.T) {
	// Tokens and the allocation-free path the index uses agree.
	tok := Tokenizer{SplitCase: true, KeepCompound: true, Stopwords: true, Stem: true}
	in := "Get the HTMLParser's queries for getWeatherForecasts in Zürich"
	var got []string
	buf := make([]byte, 0, 2) // too small: must grow, not corrupt
	tok.terms(in, buf, func(term []byte) { got = append(got, string(term)) })
	assert.Equal(t, tok.Tokens(in), got)
	assert.Equal(t, "get html parser htmlparser s query get weather forecast getweatherforecast zürich", strings.Join(got, " "))
}
