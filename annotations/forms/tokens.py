from django import forms


class TokenCreateForm(forms.Form):
    name = forms.CharField(max_length=100, help_text="What uses it, e.g. “labeling script on my laptop”.")


class MemberTokenCreateForm(TokenCreateForm):
    user = forms.ModelChoiceField(queryset=None, help_text="The member the token acts as.")

    def __init__(self, *args, members=None, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["user"].queryset = members
