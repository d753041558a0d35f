"""What a person looks at and listens to: the timeline picture and the review page of a render."""
