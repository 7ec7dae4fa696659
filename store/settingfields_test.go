package store_test

import (
	"reflect"
	"strings"
	"testing"
	"time"

	"outpost/store"
)

// TestSettingFields: the one list of settings names every duration field of
// Settings once, by its JSON name, and points at that very field; a setting
// added to the struct but not to the list fails here.
func TestSettingFields(t *testing.T) {
	var s store.Settings
	byKey := map[string]store.SettingField{}
	for _, f := range store.SettingFields() {
		if _, dup := byKey[f.Key]; dup {
			t.Errorf("key %s listed twice", f.Key)
		}
		byKey[f.Key] = f
	}
	st, v := reflect.TypeOf(s), reflect.ValueOf(&s).Elem()
	var durations int
	for i := range st.NumField() {
		sf := st.Field(i)
		if sf.Type != reflect.TypeOf(time.Duration(0)) {
			continue
		}
		durations++
		key, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		f, ok := byKey[key]
		if !ok {
			t.Errorf("Settings.%s (%s) is missing from SettingFields", sf.Name, key)
			continue
		}
		if got, want := f.Of(&s), v.Field(i).Addr().Interface().(*time.Duration); got != want {
			t.Errorf("%s points at another field than Settings.%s", key, sf.Name)
		}
		if f.Meaning == "" {
			t.Errorf("%s has no meaning", key)
		}
	}
	if got, want := len(byKey), durations; got != want {
		t.Errorf("got %d settings listed, want %d (the duration fields of Settings)", got, want)
	}
	if got, want := store.DefaultSettings().String(), "offline_after=12h0m0s inventory_interval=5h0m0s uninstall_grace=6h0m0s proxy_offline_after=30s bind_batch_gap=1m0s poll_timeout=30s"; got != want {
		t.Errorf("String: got %q, want %q", got, want)
	}
}
