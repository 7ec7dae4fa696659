package tui

import (
	"context"
	"errors"
	"io"

	_ "early.outpost.invalid/termbg" // must initialise before bubbletea: see its doc

	tea "github.com/charmbracelet/bubbletea"
	"github.com/charmbracelet/lipgloss"
	"github.com/mattn/go-runewidth"
)

// Run shows the dashboard on the terminal (the alternate screen) until
// the operator quits or ctx ends; the terminal is restored either way.
// in and out are the terminal (nil: stdin and stdout).
func Run(ctx context.Context, opt Options, in io.Reader, out io.Writer) error {
	// Fixed colours only, so lipgloss never asks the terminal for its
	// background; ambiguous-width characters are one cell (see cells).
	lipgloss.SetHasDarkBackground(true)
	runewidth.DefaultCondition.EastAsianWidth = false
	c := NewCommon(opt)
	root := NewRoot(c, NewClustersView(c))
	opts := []tea.ProgramOption{tea.WithAltScreen(), tea.WithContext(ctx)}
	if in != nil {
		opts = append(opts, tea.WithInput(in))
	}
	if out != nil {
		opts = append(opts, tea.WithOutput(out))
	}
	_, err := tea.NewProgram(root, opts...).Run()
	if errors.Is(err, tea.ErrProgramKilled) && ctx.Err() != nil {
		return nil // stopped by a signal: a normal end
	}
	return err
}
