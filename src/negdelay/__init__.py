"""negdelay: delayed negative prompts for diffusers."""
